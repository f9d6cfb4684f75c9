"""python3 -m shmkit.bench: shmkit against multiprocessing in one run, 1 -> 1 processes.

Workloads (messages or increments per second, median of --runs runs, fork start method):
  queue-bytes64   Queue.put/get of a 64-byte bytes object (pickled by multiprocessing;
                  shmkit writes and reads the same pickle without the pickler)
  queue-tuple     Queue.put/get of a small tuple (i, "abc", 1.5)
  pipe-bytes64    Connection.send_bytes/recv_bytes of 64 bytes
  value-locked    two processes each doing `with v.get_lock(): v.value += 1`
Pools (2 workers; calls per second of a trivial function, or microseconds per call):
  pool-imap       shmkit.Pool.imap against multiprocessing.Pool.imap, each at its best
                  chunksize of 100, 1000 and 10000 (--count calls; --full: 1,000,000)
  pool-map        shmkit.Pool.map (its default chunks) against multiprocessing.Pool.imap at
                  its best chunksize, as above
  executor-map    shmkit.futures.ProcessPoolExecutor.map against concurrent.futures'
                  ProcessPoolExecutor.map, both at their default (chunksize=1); the latter
                  makes a future and a message per call, so it runs on --count/40 calls
  submit-latency  microseconds per executor.submit(f).result(), one call at a time
                  (target: a third of concurrent.futures' or less, i.e. ratio <= 0.33)
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


def _adder(v, n, start, out):
    start.wait()
    lock = v.get_lock()
    t0 = time.perf_counter()
    for _ in range(n):
        with lock:
            v.value += 1
    out.put(time.perf_counter() - t0)


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
    secs = _run(ctx, [(_adder, (v, n), True), (_adder, (v, n), True)], 2)
    assert v.value == 2 * n, "lost updates under the lock"
    return 2 * n / secs


def _nothing(x):
    return x


def _inputs(n):
    # A list, not a range: shmkit's pools send a range's chunks as ranges (a few bytes each),
    # which would flatter them; a list is what most programs pass.
    return list(range(n))


def _pool_imap(p, n, chunksize):
    xs = _inputs(n)
    t0 = time.perf_counter()
    for _ in p.imap(_nothing, xs, chunksize):
        pass
    return n / (time.perf_counter() - t0)


def _warm(p, n):
    # The first large job of a process pays for growing its heap (and, for shmkit, for
    # touching its queues' pages): both pools get one before the clock starts.
    for _ in p.imap(_nothing, _inputs(max(100, n // 4)), 1000):
        pass


def _mp_imap_best(ctx, n):
    with ctx.Pool(2) as p:
        _warm(p, n)
        return max((_pool_imap(p, n, cs), cs) for cs in (100, 1000, 10000))


def pool_imap_rate(lib, ctx, n):
    if lib is not shmkit:
        return _mp_imap_best(ctx, n)
    with shmkit.Pool(2, context=ctx) as p:
        _warm(p, n)
        return max((_pool_imap(p, n, cs), cs) for cs in (100, 1000, 10000))


def pool_map_rate(lib, ctx, n):
    if lib is not shmkit:
        return _mp_imap_best(ctx, n)
    with shmkit.Pool(2, context=ctx) as p:
        _warm(p, n)
        xs = _inputs(n)
        t0 = time.perf_counter()
        out = p.map(_nothing, xs)
        rate = n / (time.perf_counter() - t0)
    assert len(out) == n and out[-1] == n - 1
    return rate, None


def _executor(lib, ctx):
    if lib is shmkit:
        return shmkit.futures.ProcessPoolExecutor(2, mp_context=ctx)
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(2, mp_context=ctx)


def executor_map_rate(lib, ctx, n):
    with _executor(lib, ctx) as ex:
        ex.submit(_nothing, 1).result()
        xs = _inputs(n)
        t0 = time.perf_counter()
        for _ in ex.map(_nothing, xs):
            pass
        return n / (time.perf_counter() - t0), None


def submit_latency(lib, ctx, n):
    with _executor(lib, ctx) as ex:
        for i in range(50):
            ex.submit(_nothing, i).result()
        t0 = time.perf_counter()
        for i in range(n):
            ex.submit(_nothing, i).result()
        return (time.perf_counter() - t0) / n * 1e6, None


# name: (function, target ratio, calls for shmkit, calls for the other; from --count, --full)
POOL_WORKLOADS = {
    "pool-imap": (pool_imap_rate, 3.0, lambda c: c, lambda c: c),
    "pool-map": (pool_map_rate, 3.0, lambda c: c, lambda c: c),
    "executor-map": (executor_map_rate, 10.0, lambda c: c, lambda c: max(500, c // 40)),
    "submit-latency": (submit_latency, 1 / 3, lambda c: max(500, c // 100),
                       lambda c: max(200, c // 400)),
}


def _run_pool_row(name, args, ctx):
    fn, target, ours_n, theirs_n = POOL_WORKLOADS[name]
    count = 1000000 if args.full else args.count
    ours = [fn(shmkit, ctx, ours_n(count)) for _ in range(args.runs)]
    theirs = [fn(mp, ctx, theirs_n(count)) for _ in range(args.runs)]
    o, ocs = sorted(ours)[len(ours) // 2]
    t, tcs = sorted(theirs)[len(theirs) // 2]
    latency = name == "submit-latency"
    row = {"shmkit": o, "multiprocessing": t, "ratio": o / t, "target": target,
           "unit": "us/call" if latency else "calls/s", "calls": ours_n(count)}
    if ocs or tcs:
        row["chunksize"] = {"shmkit": ocs, "multiprocessing": tcs}
    if not args.json:
        if latency:
            print("%-14s shmkit %9.1f us    stdlib %9.1f us    %5.2fx (target <= %.2fx)"
                  % (name, o, t, o / t, target), flush=True)
        else:
            print("%-14s shmkit %10.0f/s  multiprocessing %9.0f/s  %5.1fx (target %gx)%s"
                  % (name, o, t, o / t, target,
                     "  chunksize %s vs %s" % (ocs, tcs) if ocs or tcs else ""), flush=True)
    return row


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
    ap.add_argument("--full", action="store_true",
                    help="pool rows with 1,000,000 calls (default: --count)")
    ap.add_argument("workloads", nargs="*", choices=[[]] + list(WORKLOADS) + list(POOL_WORKLOADS),
                    help="which to run (default: all)")
    args = ap.parse_args(argv)
    if args.quick:
        args.count, args.runs = 20000, 1
    ctx = mp.get_context("fork")
    results = {}
    for name in args.workloads or list(WORKLOADS) + list(POOL_WORKLOADS):
        if name in POOL_WORKLOADS:
            results[name] = _run_pool_row(name, args, ctx)
            continue
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
