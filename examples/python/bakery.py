"""Producer and consumers around a bounded shelf (lessons 000 and 003): one baker puts 50
loaves on a shelf of 10, five customers take them. No None sentinels: the baker close()s the
queue, and each customer's loop ends at EOF once the shelf is empty.
Run: python3 examples/python/bakery.py
"""
import multiprocessing as mp
import time

import shmkit


def baker(shelf, loaves):
    for i in range(loaves):
        shelf.put("loaf %d" % i)
        time.sleep(0.001)
    shelf.close()
    print("baker: baked %d loaves" % loaves, flush=True)


def customer(k, shelf, eaten):
    n = 0
    for _ in shelf:  # ends at EOF: the baker is gone and the shelf is empty
        n += 1
    with eaten.get_lock():
        eaten.value += n
    print("customer %d: took %d" % (k, n), flush=True)


def main():
    shelf = shmkit.Queue(10, writers=1)  # EOF once the one baker came and went
    eaten = shmkit.Value("i", 0)
    ps = [mp.Process(target=baker, args=(shelf, 50))]
    ps += [mp.Process(target=customer, args=(k, shelf, eaten)) for k in range(5)]
    for p in ps:
        p.start()
    shelf.close()  # this process bakes nothing
    for p in ps:
        p.join()
    print("eaten: %d of 50" % eaten.value)


if __name__ == "__main__":
    main()
