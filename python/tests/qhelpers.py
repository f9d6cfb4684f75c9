"""Targets for the Queue tests' child processes (importable by spawn and forkserver children)."""
import os
import signal
import time


def square_worker(tasks, results):
    """multiprocessing's worker: a result per task until the None sentinel."""
    for x in iter(tasks.get, None):
        results.put(x * 2)


def batch_worker(tasks, results):
    """The same in batches: get_many then put_many."""
    while True:
        got = tasks.get_many(256)
        stops = got.count(None)
        results.put_many([x * 2 for x in got if x is not None])
        if stops:
            for _ in range(stops - 1):  # another worker's sentinel: hand it on
                tasks.put(None)
            return


def put_n_then_exit(q, n, cancel):
    for i in range(n):
        q.put(i)
    if cancel:
        q.cancel_join_thread()


def put_n_then_set(q, n, ev):
    for i in range(n):
        q.put(i)
    ev.set()


def put_get_after_close(q, out):
    """In a child forked after its parent closed q: the queue is open here."""
    q.put("from child")
    out.put(q.get(timeout=30))
    out.put(q._closed)


def take_large_slowly(q, ready):
    """Get one large message, then stay in get for the next one until killed."""
    ready.put(len(q.get_bytes(timeout=60)))
    q.get_bytes(timeout=600)


def mixed_python_producer(q, tag, sizes):
    from shmkit import stamp
    for seq, n in enumerate(sizes):
        q.put_bytes(stamp.make(tag, seq, n))
    q.close()
    q.join_thread()


def sleep_forever():
    while True:
        time.sleep(1)


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def put_list(q, items):
    for x in items:
        q.put(x)
