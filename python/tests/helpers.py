"""Targets for child processes (importable by spawn and forkserver children)."""
import os
import signal
import time

import shmkit


def put_range(q, start, n):
    for i in range(start, start + n):
        q.put(i)


def put_then_close(q, items):
    for x in items:
        q.put(x)
    q.close()


def get_n(q, n, out):
    for _ in range(n):
        out.put(q.get(timeout=60))


def consume_joinable(q, results):
    while True:
        item = q.get(timeout=60)
        if item is None:
            q.task_done()
            return
        results.put(item * 2)
        q.task_done()


def add_locked(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def hold_then_set(v, ready, secs, value):
    """Hold v's lock for secs, set v.value at the end, release."""
    with v.get_lock():
        ready.set()
        time.sleep(secs)
        v.get_obj().value = value


def read_value(v, out):
    out.put(v.value)


def add_racy(v, n):
    for _ in range(n):
        v.value += 1


def add_under(lock, v, n):
    for _ in range(n):
        with lock:
            v.value += 1


def array_fill(arr, value):
    with arr.get_lock():
        for i in range(len(arr)):
            arr[i] = value


def raw_fill(arr, value):
    for i in range(len(arr)):
        arr[i] = value


def event_setter(e, delay):
    time.sleep(delay)
    e.set()


def barrier_party(b, out):
    out.put(b.wait(timeout=60))


def cond_waiter(c, ready, out):
    with c:
        ready.release()
        ok = c.wait(timeout=60)
        out.put(ok)


def sem_holder(s, inside, counter, lock, release_evt):
    with s:
        with lock:
            counter.value += 1
            inside.put(counter.value)
        release_evt.wait(60)
        with lock:
            counter.value -= 1


def conn_echo(conn, *unused):
    # Close the ends we inherited and do not use (fork): held, they would keep EOF away.
    for other in unused:
        other.close()
    while True:
        try:
            obj = conn.recv()
        except EOFError:
            return
        conn.send(obj)


def conn_send_close(conn, items, *unused):
    for other in unused:
        other.close()
    for x in items:
        conn.send(x)
    conn.close()


def shm_write(name, data):
    shm = shmkit.SharedMemory(name)
    shm.buf[:len(data)] = data
    shm.close()


def die_holding(lock, ready):
    lock.acquire()
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def die_mid_put(q):
    """Put forever; the parent SIGKILLs us at some point."""
    i = 0
    while True:
        q.put(i)
        i += 1


def big_put(q, size):
    q.put(b"x" * size)
    q.put(list(range(size // 8)))


def big_send(conn, size):
    conn.send_bytes(bytes(range(256)) * (size // 256))
    conn.send({"big": "y" * size})


def conn_send_locked(conn, lock, who, n):
    for i in range(n):
        with lock:
            conn.send((who, i))


def conn_poll_only(conn, timeout):
    # Look, take nothing, and exit: what was there stays for the other holders.
    os._exit(0 if conn.poll(timeout) else 3)


def conn_hold_and_leave(conn, delay, kill):
    time.sleep(delay)
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)
