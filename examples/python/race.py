"""The shared Value race (lesson 004) with shmkit instead of multiprocessing.

Two processes add 1 to one shared Value 100000 times each:
  racy        v.value += 1 with no lock: a separate load and store, updates are lost
  lock        under v.get_lock(): always 200000
  semaphore2  under a Semaphore(2): two processes inside at once, still loses updates
Run: python3 examples/python/race.py [--iters N]
"""
import argparse
import multiprocessing as mp

import shmkit


def racy(v, n):
    for _ in range(n):
        v.value += 1  # v is a RawValue here: load, add, store, with nothing held


def locked(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def under(sem, v, n):
    for _ in range(n):
        with sem:
            v.value += 1


def run(target, v, *extra, n):
    ps = [mp.Process(target=target, args=extra + (v, n)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return v.value


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=100000)
    n = ap.parse_args().iters
    total = 2 * n
    print("racy:       %d of %d" % (run(racy, shmkit.RawValue("i", 0), n=n), total))
    print("lock:       %d of %d" % (run(locked, shmkit.Value("i", 0), n=n), total))
    sem = shmkit.Semaphore(2)
    print("semaphore2: %d of %d" % (run(under, shmkit.RawValue("i", 0), sem, n=n), total))


if __name__ == "__main__":
    main()
