"""Queue without a maxsize never blocks put (the feeder thread), Queue(maxsize=N) blocks
beyond N, close()/join_thread()/cancel_join_thread() as multiprocessing documents them, a
JoinableQueue counting buffered puts, threads beyond the seat table, fork after close(),
put_many/get_many and fileno()."""
import os
import queue
import select
import threading
import time

import pytest

import qhelpers
import shmkit


def test_million_tasks_put_before_the_workers_start(ctx):
    """The pattern that hung at the 1,025th put: every task first, then the workers."""
    n = 1000000
    tasks, results = shmkit.Queue(), shmkit.Queue()
    t0 = time.monotonic()
    for i in range(n):
        tasks.put(i)  # never blocks: the ring holds 1024, the rest waits in this process
    assert time.monotonic() - t0 < 120
    assert tasks.qsize() == n and tasks.stats()["buffered"] >= n - 1024
    workers = [ctx.Process(target=qhelpers.batch_worker, args=(tasks, results))
               for _ in range(2)]
    for w in workers:
        w.start()
    for _ in workers:
        tasks.put(None)
    total, count = 0, 0
    while count < n:
        got = results.get_many(256, timeout=120)
        count += len(got)
        total += sum(got)
    assert count == n and total == n * (n - 1)
    for w in workers:
        w.join(120)
        assert w.exitcode == 0


def test_many_tasks_one_at_a_time(ctx):
    """The same with put()/get() per task, as multiprocessing code does it."""
    n = 30000
    tasks, results = shmkit.Queue(), shmkit.Queue()
    for i in range(n):
        tasks.put(i)
    w = ctx.Process(target=qhelpers.square_worker, args=(tasks, results))
    w.start()
    tasks.put(None)
    got = [results.get(timeout=120) for _ in range(n)]
    assert got == [2 * i for i in range(n)]  # one producer, one consumer: in order
    w.join(120)
    assert w.exitcode == 0


def test_order_kept_across_the_buffer():
    """Direct puts never overtake buffered ones: a single thread's messages stay in order
    while the ring fills, drains and fills again."""
    q = shmkit.Queue(capacity=8)
    out = []

    def consume():
        for _ in range(5000):
            out.append(q.get(timeout=60))

    t = threading.Thread(target=consume)
    t.start()
    for i in range(5000):
        q.put(i)
        if i % 700 == 0:
            time.sleep(0.01)  # let the consumer empty the ring now and then
    t.join(60)
    assert out == list(range(5000))


def test_maxsize_holds_n_messages_up_to_max_size():
    q = shmkit.Queue(3, max_size=200100)  # 3 slots of max_size bytes
    big = b"y" * 200000
    for _ in range(3):
        q.put(big, timeout=5)
    assert q.full() and q.qsize() == 3
    with pytest.raises(queue.Full):
        q.put(big, timeout=0.1)
    with pytest.raises(queue.Full):
        q.put(b"small", block=False)
    assert q.get() == big
    q.put(b"small", timeout=5)
    assert [q.get(), q.get(), q.get()] == [big, big, b"small"]


def test_maxsize_survives_pickling(ctx):
    """A bounded queue passed to a spawned child still blocks there."""
    q = shmkit.Queue(2)
    r = shmkit.Queue()
    p = ctx.Process(target=qhelpers.put_n_then_set, args=(q, 5, shmkit.Event()))
    p.start()
    try:
        deadline = time.monotonic() + 60
        while q.qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert q.qsize() == 2  # the child is blocked on the third
    finally:
        got = [q.get(timeout=30) for _ in range(5)]
    assert got == list(range(5))
    p.join(60)
    assert p.exitcode == 0
    del r


def test_unbounded_is_never_full():
    q = shmkit.Queue(capacity=2)
    for i in range(10):
        q.put_nowait(i)  # never queue.Full
    assert not q.full() and q.qsize() == 10
    assert [q.get(timeout=10) for _ in range(10)] == list(range(10))


def test_exit_waits_for_the_buffer(ctx):
    """A child that buffered puts does not end before they are in the queue."""
    q = shmkit.Queue(capacity=16)
    p = ctx.Process(target=qhelpers.put_n_then_exit, args=(q, 3000, False))
    p.start()
    p.join(1.5)
    assert p.exitcode is None  # still flushing: nobody reads yet
    assert [q.get(timeout=60) for _ in range(3000)] == list(range(3000))
    p.join(60)
    assert p.exitcode == 0


def test_cancel_join_thread_lets_the_process_exit(ctx):
    q = shmkit.Queue(capacity=16)
    p = ctx.Process(target=qhelpers.put_n_then_exit, args=(q, 3000, True))
    p.start()
    p.join(60)
    assert p.exitcode == 0  # exited with messages still buffered: those are lost
    got = []
    while True:
        try:
            got.append(q.get(timeout=0.5))
        except queue.Empty:
            break
    assert got == list(range(len(got))) and 16 <= len(got) < 3000


def test_close_then_join_thread_flushes():
    q = shmkit.Queue(capacity=4)
    r = shmkit.Queue.attach(q.name)
    for i in range(100):
        q.put(i)
    with pytest.raises(AssertionError):
        q.join_thread()  # not closed yet: as multiprocessing
    q.close()
    with pytest.raises(ValueError):
        q.put(1)
    got = []
    t = threading.Thread(target=lambda: got.extend(r.get(timeout=30) for _ in range(100)))
    t.start()
    q.join_thread()
    t.join(60)
    assert got == list(range(100))
    # the last writer left once the buffer was flushed: EOF
    with pytest.raises(EOFError):
        r.get(timeout=10)


def test_joinable_counts_buffered_puts(ctx):
    """join() in another process waits for messages still in a producer's buffer."""
    q = shmkit.JoinableQueue(capacity=8)
    done = shmkit.Event()
    # A child that buffers 500 messages and then waits for us.
    p = ctx.Process(target=qhelpers.put_n_then_set, args=(q, 500, done))
    p.start()
    assert done.wait(60)
    assert q.join(timeout=0.3) is False
    assert q.stats()["unfinished"] >= 500
    got = []
    while len(got) < 500:
        got.append(q.get(timeout=60))
        q.task_done()
    assert got == list(range(500))
    assert q.join(timeout=30) is True
    p.join(60)
    assert p.exitcode == 0


def test_joinable_own_buffer_and_threads():
    """task_done from a thread while another thread is blocked in get on the same handle."""
    q = shmkit.JoinableQueue(capacity=4)
    for i in range(50):
        q.put(i)
    seen = []

    def worker():
        while True:
            x = q.get(timeout=60)
            if x is None:
                q.task_done()
                return
            seen.append(x)
            q.task_done()

    ts = [threading.Thread(target=worker) for _ in range(3)]
    for t in ts:
        t.start()
    assert q.join(timeout=60) is True
    assert sorted(seen) == list(range(50))
    for _ in ts:
        q.put(None)
    for t in ts:
        t.join(60)
    assert q.join(timeout=30) is True


def test_more_threads_than_seats():
    """300 threads putting and getting through one Queue: a process takes a few seats, not
    one per thread."""
    q = shmkit.Queue(16)
    n, each = 300, 20
    out = []
    errors = []
    start = threading.Barrier(n)

    def run(k):
        try:
            start.wait(60)
            for i in range(each):
                q.put((k, i), timeout=60)
                out.append(q.get(timeout=60))
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert errors == []
    assert sorted(out) == sorted((k, i) for k in range(n) for i in range(each))
    assert q.stats()["participants"] <= 3


def test_close_in_parent_not_in_children_forked_later():
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    q = shmkit.Queue()
    out = shmkit.Queue()
    keep = shmkit.Queue.attach(q.name)
    keep.put("kept")  # another writer: the maker's close() is not EOF
    q.close()
    with pytest.raises(ValueError):
        q.put(1)
    with pytest.raises(ValueError):
        q.get()
    assert keep.get(timeout=10) == "kept"
    p = ctx.Process(target=qhelpers.put_get_after_close, args=(q, out))
    p.start()
    assert out.get(timeout=60) == "from child"
    assert out.get(timeout=60) is False
    p.join(60)
    assert p.exitcode == 0


def test_put_many_get_many():
    q = shmkit.Queue(capacity=64)
    items = [("item", i, "x" * (i % 50)) for i in range(1000)]
    assert q.put_many(items) == 1000  # unbounded: the ring takes 64, the rest is buffered
    got = []
    while len(got) < 1000:
        batch = q.get_many(100, timeout=30)
        assert 1 <= len(batch) <= 100
        got.extend(batch)
    assert got == items
    with pytest.raises(queue.Empty):
        q.get_many(10, timeout=0.05)
    with pytest.raises(ValueError):
        q.get_many(0)
    with pytest.raises(TypeError):
        q.put_many(5)


def test_put_many_bounded_and_unpicklable():
    q = shmkit.Queue(10, max_size=300100)
    assert q.put_many(range(25), block=False) == 10  # the prefix that fits
    with pytest.raises(queue.Full):
        q.put_many([1], timeout=0.05)
    assert q.get_many(50) == list(range(10))
    with pytest.raises(Exception):
        q.put_many([1, lambda: 0, 3])  # nothing queued when one cannot be pickled
    assert q.empty()
    big = [b"z" * 100000, b"small", b"w" * 300000]
    assert q.put_many(big, timeout=10) == 3
    assert q.get_many(5, timeout=10) == big


def test_fileno_readiness():
    q = shmkit.Queue()
    fd = q.fileno()
    assert isinstance(fd, int) and fd >= 0 and q.fileno() == fd
    # empty it (it may be readable spuriously at first), then it must not be
    with pytest.raises(queue.Empty):
        q.get_nowait()
    r, _, _ = select.select([fd], [], [], 0.1)
    assert r == []
    other = shmkit.Queue.attach(q.name)
    threading.Timer(0.2, other.put, ("wake",)).start()
    r, _, _ = select.select([fd], [], [], 30)
    assert r == [fd]
    assert q.get_nowait() == "wake"
    import multiprocessing.connection
    other.put("again")
    assert multiprocessing.connection.wait([q], timeout=30) == [q]
    assert q.get_nowait() == "again"
