"""A worker killed in the middle of a task, and the pool carrying on.

Eight tasks square their number in a pool of two processes; task 3 is killed while it runs
(SIGKILL, as the OOM killer or a segfault would). With shmkit.Pool only that task fails, with
shmkit.WorkerDied naming the signal; a replacement worker starts and the seven others finish.
With --retries 1 the killed task runs again and all eight finish. --stdlib runs the same tasks
through concurrent.futures.ProcessPoolExecutor for comparison: there the one death breaks the
whole pool and the tasks still pending fail with BrokenProcessPool.
Run: python3 examples/python/crash.py [--retries N] [--stdlib]
"""
import argparse
import concurrent.futures
import os
import signal
import time

import shmkit

def task(i, flag):
    time.sleep(0.1)
    if i == 3 and (flag is None or _first_time(flag)):
        os.kill(os.getpid(), signal.SIGKILL)  # dies here, in the middle of the task
    return i * i


def _first_time(flag):
    # With retries, the second run of task 3 should live: a shared flag says it died once.
    with flag.get_lock():
        first = flag.value == 0
        flag.value = 1
    return first


def with_shmkit(retries):
    flag = shmkit.Value("i", 0) if retries else None
    with shmkit.Pool(2, retries=retries) as pool:
        results = [pool.apply_async(task, (i, flag)) for i in range(8)]
        for i, r in enumerate(results):
            try:
                print("task %d: %d" % (i, r.get()))
            except shmkit.WorkerDied as e:
                print("task %d: failed: %s" % (i, e))
        print("the pool still works: 12 squared is", pool.apply(task, (12, None)))


def with_stdlib():
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        futures = [ex.submit(task, i, None) for i in range(8)]
        for i, f in enumerate(futures):
            try:
                print("task %d: %d" % (i, f.result()))
            except concurrent.futures.process.BrokenProcessPool as e:
                print("task %d: failed: %s" % (i, type(e).__name__))
        try:
            ex.submit(task, 12, None)
        except concurrent.futures.process.BrokenProcessPool:
            print("and the pool takes no more work: BrokenProcessPool")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retries", type=int, default=0, help="run a killed task again N times")
    ap.add_argument("--stdlib", action="store_true",
                    help="concurrent.futures.ProcessPoolExecutor instead")
    args = ap.parse_args()
    if args.stdlib:
        with_stdlib()
    else:
        with_shmkit(args.retries)


if __name__ == "__main__":
    main()
