"""The bank account (lesson 000): half the processes deposit 100, half withdraw 100, many
times; the balance should end at 0. Without the lock it usually does not.
Run: python3 examples/python/bank.py [--procs 4] [--iters 50000]
"""
import argparse
import multiprocessing as mp

import shmkit


def move(balance, amount, n, use_lock):
    for _ in range(n):
        if use_lock:
            with balance.get_lock():
                balance.value += amount
        else:
            balance.get_obj().value += amount  # the raw cell: no lock taken


def run(procs, n, use_lock):
    balance = shmkit.Value("q", 0)
    ps = [mp.Process(target=move, args=(balance, 100 if i % 2 == 0 else -100, n, use_lock))
          for i in range(procs)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return balance.value


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--iters", type=int, default=50000)
    a = ap.parse_args()
    print("without a lock: balance %d (should be 0)" % run(a.procs, a.iters, False))
    print("with the lock:  balance %d" % run(a.procs, a.iters, True))


if __name__ == "__main__":
    main()
