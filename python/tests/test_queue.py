"""Queue, JoinableQueue, SimpleQueue: multiprocessing's semantics, plus bytes, EOF, stats,
big messages, bad input, threads, Ctrl-C, and children under every start method."""
import os
import pickle
import queue
import signal
import threading
import time

import pytest

import helpers
import shmkit


def test_fifo_and_types():
    q = shmkit.Queue()
    items = [1, "two", (3, 4.0), {"five": [6]}, None, b"\x00\x01", 2 ** 100]
    for x in items:
        q.put(x)
    assert q.qsize() == len(items)
    assert [q.get() for _ in items] == items
    assert q.empty()


def test_empty_and_full_with_timeouts():
    q = shmkit.Queue(2)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(False)
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.1)
    assert time.monotonic() - t0 >= 0.09
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    assert q.get() == 1 and q.get() == 2


def test_close_refuses_further_use():
    q = shmkit.Queue()
    q.close()
    q.join_thread()
    q.cancel_join_thread()
    with pytest.raises(ValueError):
        q.put(1)
    with pytest.raises(ValueError):
        q.get()


def test_joinable():
    q = shmkit.JoinableQueue()
    q.put(1)
    q.put(2)
    assert q.join(timeout=0.05) is False
    q.get()
    q.task_done()
    q.get()
    q.task_done()
    assert q.join(timeout=5) is True
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_joinable_with_consumers(ctx):
    q = shmkit.JoinableQueue()
    results = shmkit.Queue()
    ps = [ctx.Process(target=helpers.consume_joinable, args=(q, results)) for _ in range(2)]
    for p in ps:
        p.start()
    for i in range(50):
        q.put(i)
    q.join()  # returns only when all 50 are task_done
    assert sorted(results.get(timeout=10) for _ in range(50)) == [2 * i for i in range(50)]
    for _ in ps:
        q.put(None)
    for p in ps:
        p.join(60)
        assert p.exitcode == 0


def test_simple_queue():
    q = shmkit.SimpleQueue()
    assert q.empty()
    q.put([1, 2])
    assert not q.empty()
    assert q.get() == [1, 2]
    q.close()


def test_bytes_and_not_a_pickle():
    q = shmkit.Queue()
    q.put_bytes(b"raw message")
    q.put("after")
    with pytest.raises(shmkit.NotAPickleError, match="not a pickle") as e:
        q.get()
    assert isinstance(e.value, pickle.UnpicklingError)
    assert q.get() == "after"  # the next message is still delivered
    q.put_bytes(bytearray(b"ba"))
    q.put_bytes(memoryview(b"mv"))
    assert q.get_bytes() == b"ba" and q.get_bytes() == b"mv"


# Sizes on each side of the shapes a bytes object's pickle takes (SHORT_BINBYTES below 256,
# BINBYTES from there, no FRAME from 64 KiB).
BYTES_SIZES = (0, 1, 64, 255, 256, 257, 4000, 65535, 65536, 65537, 200000)


def _payload(n):
    return bytes((i * 7 + n) & 0xFF for i in range(n))


def test_bytes_pickle_identical():
    """put() of a bytes object skips the pickler but queues exactly pickle.dumps(b, 5): a
    consumer reading raw messages (get_bytes, C) sees what it saw before; get() gives back an
    equal bytes object, also when the pickle came from pickle.dumps itself."""
    q = shmkit.Queue(4, slot_size=70000)
    for n in BYTES_SIZES:
        b = _payload(n)
        q.put(b)
        raw = q.get_bytes()  # larger than a slot too: through the ring, the same bytes
        assert raw == pickle.dumps(b, protocol=5), n
        q.put(b)
        got = q.get()
        assert type(got) is bytes and got == b, n
        if n <= 65000:  # pickles made by pickle itself, put raw: get() unpickles them
            for protocol in (5, 4):
                q.put_bytes(pickle.dumps(b, protocol=protocol))
                assert q.get() == b


class BytesSub(bytes):
    pass


def test_bytes_like_objects_still_pickled():
    """Only exact bytes take the fast path: subclasses, bytearray and memoryview-backed
    objects arrive as the pickler makes them."""
    q = shmkit.Queue()
    for obj in (BytesSub(b"sub"), bytearray(b"ba"), (b"in", b"tuple"), [b""]):
        q.put(obj)
        got = q.get()
        assert type(got) is type(obj) and got == obj
    a, b = shmkit.Pipe()
    a.send(b"over a pipe")
    assert b.recv_bytes() == pickle.dumps(b"over a pipe", protocol=5)
    a.send(b"x" * 300)
    assert b.recv() == b"x" * 300


def test_near_bytes_pickles_go_to_the_unpickler(uname):
    """Messages shaped almost like a bytes object's pickle are not taken by the fast path:
    get() does what pickle.loads does with them (here: three refused, one accepted as a
    different object), and the next message is delivered."""
    good = pickle.dumps(b"y" * 64, protocol=5)
    near = [good[:-1] + b"!",                 # no STOP
            good[:-2],                        # cut short
            good[:11] + b"C\x41" + good[13:],  # one byte more: pickle takes MEMOIZE's byte
            good[:3] + b"\x45" + good[4:]]     # FRAME length one too many
    q = shmkit.Queue()
    for m in near:
        try:
            expected = pickle.loads(m)
        except Exception:
            expected = shmkit.NotAPickleError
        q.put_bytes(m)
        q.put(b"next")
        if expected is shmkit.NotAPickleError:
            with pytest.raises(shmkit.NotAPickleError):
                q.get()
        else:
            assert q.get() == expected == b"y" * 64 + b"\x94"
        assert q.get() == b"next"


def test_raw_message_too_big(uname, tool):
    import subprocess
    name = uname("q")
    subprocess.run([tool, "create", "queue", name, "--capacity", "4", "--max-size", "16"],
                   check=True)
    q = shmkit.Queue.attach(name)
    with pytest.raises(ValueError, match=r"17 bytes.*16 bytes"):
        q.put_bytes(b"x" * 17)
    assert q.qsize() == 0  # nothing queued
    q.put_bytes(b"y" * 16)
    assert q.get_bytes() == b"y" * 16


def test_big_objects_arrive_whole(ctx):
    q = shmkit.Queue(4)
    size = 3 << 20
    p = ctx.Process(target=helpers.big_put, args=(q, size))
    p.start()
    assert q.get(timeout=60) == b"x" * size
    assert q.get(timeout=60) == list(range(size // 8))
    p.join(60)
    assert p.exitcode == 0
    leftover = [n for n in os.listdir("/dev/shm") if "-spill-" in n and str(p.pid) in n]
    assert leftover == []


def test_stats_and_memory():
    q = shmkit.Queue()
    st = q.stats()
    assert st["capacity"] == 1024 and st["slot_size"] == 4096
    assert st["max_size"] == 2 ** 31 - 1  # any message: longer ones take several slots
    assert st["reserved_bytes"] <= 6 << 20  # a Queue() reserves a few MiB
    q.put(1)
    q.get()
    st = q.stats()
    assert st["put_total"] == 1 and st["get_total"] == 1 and not st["eof"]
    big = shmkit.Queue(100000)  # small slots then: bigger messages take several
    assert big.stats()["reserved_bytes"] <= 48 << 20 and big.slot_size == 256
    big.put(b"z" * 5000)
    assert big.get() == b"z" * 5000
    for i in range(100000):
        big.put_nowait(("task", i))  # a 180-byte-ish message takes one slot: N of them fit
    assert big.full()


def test_eof_and_iteration(ctx):
    q = shmkit.Queue(writers=1)  # EOF waits for one producer besides the maker
    p = ctx.Process(target=helpers.put_then_close, args=(q, list(range(20))))
    p.start()
    q.close()  # the maker puts no more: EOF once the child is done
    q2 = shmkit.Queue.attach(q.name)
    assert list(q2) == list(range(20))
    with pytest.raises(EOFError):
        q2.get(timeout=5)
    p.join(60)
    assert p.exitcode == 0


def test_children_put_parent_gets(ctx):
    q = shmkit.Queue()
    ps = [ctx.Process(target=helpers.put_range, args=(q, k * 1000, 300)) for k in range(3)]
    for p in ps:
        p.start()
    got = [q.get(timeout=60) for _ in range(900)]
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(got) == sorted(i for k in range(3) for i in range(k * 1000, k * 1000 + 300))
    # each producer's items arrive in its order
    for k in range(3):
        mine = [x for x in got if k * 1000 <= x < k * 1000 + 300]
        assert mine == sorted(mine)


def test_queue_through_queue(ctx):
    q, inner = shmkit.Queue(), shmkit.Queue()
    q.put(inner)
    got = q.get()
    assert got.name == inner.name
    got.put("hi")
    assert inner.get(timeout=5) == "hi"


def test_threads_share_a_queue():
    q = shmkit.Queue(8)
    out = []

    def consumer():
        for _ in range(1000):
            out.append(q.get(timeout=60))

    ts = [threading.Thread(target=consumer) for _ in range(2)]
    for t in ts:
        t.start()
    for i in range(2000):
        q.put(i)  # blocks while full: the consumers must run meanwhile
    for t in ts:
        t.join(60)
    assert sorted(out) == list(range(2000))


def test_ctrl_c_interrupts_get_and_leaves_queue_working():
    q = shmkit.Queue()
    main = threading.get_ident()
    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        q.get(timeout=30)
    assert time.monotonic() - t0 < 10
    q.put("still works")
    assert q.get(timeout=5) == "still works"


def test_other_threads_run_while_one_waits():
    q = shmkit.Queue()
    ticks = []
    t = threading.Thread(target=lambda: [ticks.append(1) or time.sleep(0.01) for _ in range(20)])
    t.start()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.5)
    t.join()
    assert len(ticks) == 20


def test_attach_checks_kind_and_name(uname):
    lock = shmkit.Lock()
    with pytest.raises(shmkit.WrongKindError):
        shmkit.Queue.attach(lock.name)
    with pytest.raises(ValueError, match="bad name"):
        shmkit.Queue.attach("no-slash")
    with pytest.raises(FileNotFoundError):
        shmkit.Queue.attach(uname("missing"))
    q = shmkit.Queue()
    with pytest.raises(shmkit.WrongKindError):
        shmkit.JoinableQueue.attach(q.name)
    assert type(shmkit.attach(q.name)) is shmkit.Queue


def test_named_queue_is_callers_to_unlink(uname):
    name = uname("named")
    q = shmkit.Queue(name=name)
    with pytest.raises(FileExistsError):
        shmkit.Queue(name=name)
    q.unlink()
    assert not os.path.exists("/dev/shm" + name)
