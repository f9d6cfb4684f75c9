"""python3 -m shmkit.bench: shmkit against multiprocessing in one run, 1 -> 1 processes.

Workloads (messages or increments per second, median of --runs runs, fork start method):
  queue-bytes64   Queue.put/get of a 64-byte bytes object (pickled by multiprocessing;
                  shmkit writes and reads the same pickle without the pickler)
  queue-tuple     Queue.put/get of a small tuple (i, "abc", 1.5)
  pipe-bytes64    Connection.send_bytes/recv_bytes of 64 bytes
  value-locked    two processes each doing `with v.get_lock(): v.value += 1` (get_lock()
                  called every time), timed from before the processes start until both
                  have been joined: process start included
Figures depend on the machine and its load: compare the two columns of one run only.
"""
import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time

import shmkit

PAYLOAD = b"x" * 64


def _producer(q, n, item, start):
    start.wait()
    for _ in range(n):
        q.put(item)


def _consumer(q, n, start, out):
    start.wait()
    t0 = time.perf_counter()
    for _ in range(n):
        q.get()
    out.put(time.perf_counter() - t0)


def _pipe_sender(c, n, start):
    start.wait()
    for _ in range(n):
        c.send_bytes(PAYLOAD)


def _pipe_receiver(c, n, start, out):
    start.wait()
    t0 = time.perf_counter()
    for _ in range(n):
        c.recv_bytes()
    out.put(time.perf_counter() - t0)


def _adder(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def _run(ctx, targets, n_results):
    start = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=t, args=a + (start,) + ((out,) if r else ()))
             for t, a, r in targets]
    for p in procs:
        p.start()
    time.sleep(0.2)
    start.set()
    times = [out.get(timeout=600) for _ in range(n_results)]
    for p in procs:
        p.join(600)
    return max(times)


def queue_rate(lib, ctx, n, item):
    q = lib.Queue(1024) if lib is shmkit else ctx.Queue(1024)
    secs = _run(ctx, [(_producer, (q, n, item), False), (_consumer, (q, n), True)], 1)
    return n / secs


def pipe_rate(lib, ctx, n):
    a, b = lib.Pipe() if lib is shmkit else ctx.Pipe()
    secs = _run(ctx, [(_pipe_sender, (a, n), False), (_pipe_receiver, (b, n), True)], 1)
    return n / secs


def value_rate(lib, ctx, n):
    v = lib.Value("q", 0) if lib is shmkit else ctx.Value("q", 0)
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_adder, args=(v, n)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    secs = time.perf_counter() - t0
    assert v.value == 2 * n, "lost updates under the lock"
    return 2 * n / secs


WORKLOADS = {
    "queue-bytes64": (lambda lib, ctx, n: queue_rate(lib, ctx, n, PAYLOAD), 10.0),
    "queue-tuple": (lambda lib, ctx, n: queue_rate(lib, ctx, n, (1, "abc", 1.5)), 3.0),
    "pipe-bytes64": (pipe_rate, 5.0),
    "value-locked": (value_rate, 3.0),
}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m shmkit.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200000, help="messages per run (shmkit)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    ap.add_argument("--quick", action="store_true", help="small counts, one run")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("workloads", nargs="*", choices=[[]] + list(WORKLOADS),
                    help="which to run (default: all)")
    args = ap.parse_args(argv)
    if args.quick:
        args.count, args.runs = 20000, 1
    ctx = mp.get_context("fork")
    results = {}
    for name in args.workloads or list(WORKLOADS):
        fn, target = WORKLOADS[name]
        # multiprocessing is slower: fewer messages keep its runs about as long
        ours = statistics.median(fn(shmkit, ctx, args.count) for _ in range(args.runs))
        theirs = statistics.median(fn(mp, ctx, max(1000, args.count // 8))
                                   for _ in range(args.runs))
        results[name] = {"shmkit": ours, "multiprocessing": theirs, "ratio": ours / theirs,
                         "target": target}
        if not args.json:
            print("%-14s shmkit %10.0f/s  multiprocessing %9.0f/s  %5.1fx (target %gx)"
                  % (name, ours, theirs, ours / theirs, target), flush=True)
    if args.json:
        json.dump(results, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
