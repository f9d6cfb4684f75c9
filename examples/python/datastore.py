"""Lesson 003's FakeDataStore with a pool of processes instead of threads.

The lesson runs three updates through concurrent.futures.ThreadPoolExecutor(max_workers=2);
each update copies the value, sleeps 0.1 s and writes the copy back plus one, so two updates
running at once lose one of the increments: 3 expected, 2 seen. Here the workers are
processes (shmkit.futures.ProcessPoolExecutor, the same API), the value lives in shared memory
(shmkit.Value) and the lost update happens the same way; with --lock each update holds the
value's lock around read-sleep-write and the ending value is 3.
Run: python3 examples/python/datastore.py [--lock] [--updates 3]
"""
import argparse
import logging
import os
import time

import shmkit
import shmkit.futures


class FakeDataStore:
    def __init__(self):
        self.value = shmkit.Value("i", 0)  # shared by every worker (pickled by name)

    def update(self, n, use_lock):
        logging.info("Process %s (pid %d): update starts", n, os.getpid())
        if use_lock:
            with self.value.get_lock():
                self._read_sleep_write()
        else:
            self._read_sleep_write()
        logging.info("Process %s (pid %d): update ends", n, os.getpid())

    def _read_sleep_write(self):
        local_copy = self.value.value  # the critical section: read ...
        local_copy += 1
        time.sleep(0.1)
        self.value.value = local_copy  # ... and write back


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock", action="store_true", help="hold the value's lock in update()")
    ap.add_argument("--updates", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(format="%(asctime)s: %(message)s", level=logging.INFO,
                        datefmt="%H:%M:%S")
    store = FakeDataStore()
    logging.info("Testing update. Starting value is %d.", store.value.value)
    names = ["First", "Second", "Third"] + ["#%d" % i for i in range(4, args.updates + 1)]
    with shmkit.futures.ProcessPoolExecutor(max_workers=2) as executor:
        for n in names[:args.updates]:
            executor.submit(store.update, n, args.lock)
    logging.info("Testing update. Ending value is %d.", store.value.value)
    print("ending value %d of %d" % (store.value.value, args.updates))


if __name__ == "__main__":
    main()
