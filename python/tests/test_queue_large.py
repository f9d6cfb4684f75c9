"""Messages of any size through the ring itself (no file per message): C, the tool and
Python on one queue with small and large messages, every one checked; a consumer killed
inside a large get loses that message only, counted; nothing left in /dev/shm."""
import os
import pickle
import signal
import subprocess
import threading
import time

import pytest

import qhelpers
import shmkit
from shmkit import stamp

SIZES = [24, 100, 4000, 4096, 5000, 70000, 300000, 3 << 20, 64, 9 << 20, 200]


def _shm_names(tag):
    return [n for n in os.listdir("/dev/shm") if tag in n]


def test_python_producers_tool_consumer_mixed_sizes(tool, uname, ctx):
    """Two Python producers (one a child under each start method) put stamped messages
    of 24 B .. 9 MiB into a small queue made by the tool; `shmkit consume --verify` checks
    each one whole and in order per producer."""
    name = uname("q")
    r = subprocess.run([tool, "create", "queue", name, "--capacity", "64", "--max-size",
                        "1G", "--writers", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    consumer = subprocess.Popen([tool, "consume", name, "--verify", "--json",
                                 "--timeout", "120"], stdout=subprocess.PIPE, text=True)
    q = shmkit.Queue.attach(name)
    p = ctx.Process(target=qhelpers.mixed_python_producer, args=(q, 77, SIZES))
    p.start()
    for seq, n in enumerate(SIZES):
        q.put_bytes(stamp.make(78, seq, n))
    q.close()
    q.join_thread()
    out, _ = consumer.communicate(timeout=300)
    p.join(120)
    assert p.exitcode == 0
    assert consumer.returncode == 0, out
    flat = out.replace(" ", "")
    assert '"received":%d' % (2 * len(SIZES)) in flat and '"corrupt":0' in flat, out


def test_tool_producer_python_consumer_large(tool, uname):
    """`shmkit produce` with large messages; Python gets each whole (get_bytes and get_many)."""
    name = uname("q")
    assert subprocess.run([tool, "create", "queue", name, "--capacity", "16", "--max-size",
                           "1G", "--writers", "1"]).returncode == 0
    q = shmkit.Queue.attach(name)
    producer = subprocess.Popen([tool, "produce", name, "--count", "40", "--size",
                                 str(1 << 20)])
    seen = []
    while True:
        try:
            seen.append(stamp.check(q.get_bytes(timeout=120)))
        except EOFError:
            break
    assert producer.wait(120) == 0
    assert [s for _, s in seen] == list(range(40))


def test_large_pickles_reach_a_c_consumer_as_pickles(tool, uname):
    """put() of a large object to a queue made by the tool hands the C consumer the pickle
    itself (it used to get an internal marker)."""
    name = uname("q")
    assert subprocess.run([tool, "create", "queue", name, "--capacity", "8", "--max-size",
                           "1G"]).returncode == 0
    q = shmkit.Queue.attach(name)
    items = [b"s" * 10, b"L" * (3 << 20), list(range(300000))]
    consumer = subprocess.Popen([tool, "consume", name, "--count", str(len(items))],
                                stdout=subprocess.PIPE)
    for x in items:
        q.put(x)
    out, _ = consumer.communicate(timeout=120)
    assert consumer.returncode == 0
    assert out == b"".join(pickle.dumps(x, protocol=5) + b"\n" for x in items)
    assert _shm_names("-spill-") == []


def test_python_to_python_large_and_small(ctx):
    q = shmkit.Queue()
    items = [b"a", "b" * 100000, bytes(5 << 20), ("t", 1), list(range(100000)), b"z" * 9000]
    p = ctx.Process(target=qhelpers.put_list, args=(q, items))
    p.start()
    got = [q.get(timeout=120) for _ in items]
    p.join(120)
    assert p.exitcode == 0
    assert got == items


def test_consumer_killed_inside_a_large_get(ctx):
    """A 512 MiB message streams through a 4 MiB ring; its consumer is SIGKILLed in the
    middle: the message is lost and counted, the producer goes on, the next message reaches
    the next consumer, and /dev/shm holds only the queue."""
    q = shmkit.Queue()
    ready = shmkit.Queue()
    before = set(os.listdir("/dev/shm"))
    p = ctx.Process(target=qhelpers.take_large_slowly, args=(q, ready))
    p.start()
    q.put_bytes(b"x" * 100000)
    assert ready.get(timeout=120) == 100000
    time.sleep(0.3)  # now in get for the big one
    big = bytes(512 << 20)
    t = threading.Thread(target=q.put_bytes, args=(big,))
    t.start()
    time.sleep(0.3)  # the stream is under way (it takes longer than this)
    os.kill(p.pid, signal.SIGKILL)
    p.join(60)
    t.join(120)
    assert not t.is_alive()
    q.put("after")
    assert q.get(timeout=60) == "after"
    st = q.stats()
    assert st["lost_dead_consumer"] == 1, st
    left = set(os.listdir("/dev/shm")) - before  # others' tests share /dev/shm: ours only
    assert [n for n in left if "-%d-" % p.pid in n or "spill" in n] == []
