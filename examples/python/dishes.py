"""The washer -> dryer dish pipeline (lesson 002) with JoinableQueues: the washer puts
washed dishes, a daemon dryer task_done()s each after drying it and passes it to the shelf;
join() returns once every dish is dry.
Run: python3 examples/python/dishes.py
"""
import multiprocessing as mp
import sys
import time

import shmkit


def say(line):
    sys.stdout.write(line + "\n")  # one write: lines of the two processes do not mix
    sys.stdout.flush()


def washer(dishes, to_dry):
    for dish in dishes:
        say("washing " + dish)
        time.sleep(0.01)
        to_dry.put(dish)


def dryer(to_dry, shelf):
    while True:
        dish = to_dry.get()
        say("drying " + dish)
        time.sleep(0.02)
        shelf.put(dish)
        to_dry.task_done()


def main():
    to_dry = shmkit.JoinableQueue()
    shelf = shmkit.Queue()
    dishes = ["salad", "bread", "entree", "dessert"]
    dry = mp.Process(target=dryer, args=(to_dry, shelf), daemon=True)
    dry.start()
    washer(dishes, to_dry)
    to_dry.join()  # every dish put has been task_done()'d
    print("all dry:", [shelf.get() for _ in dishes])


if __name__ == "__main__":
    main()
