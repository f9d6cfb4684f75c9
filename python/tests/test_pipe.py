"""Pipe and Connection."""
import multiprocessing
import os
import signal
import time

import pytest

import helpers
import shmkit


def test_duplex_basics():
    a, b = shmkit.Pipe()
    a.send([1, "x"])
    assert b.poll() and b.poll(0.01)
    assert b.recv() == [1, "x"]
    b.send_bytes(b"abcdef", 1, 3)
    assert a.recv_bytes() == b"bcd"
    assert not a.poll()
    t0 = time.monotonic()
    assert a.poll(0.1) is False
    assert time.monotonic() - t0 >= 0.09
    b.send_bytes(b"12345")
    buf = bytearray(10)
    assert a.recv_bytes_into(buf, 2) == 5 and bytes(buf[2:7]) == b"12345"
    b.send_bytes(b"toolong")
    with pytest.raises(multiprocessing.BufferTooShort):
        a.recv_bytes_into(bytearray(3))
    b.send_bytes(b"ok")
    assert a.recv_bytes(maxlength=10) == b"ok"
    b.close()
    assert b.closed
    with pytest.raises(EOFError):
        a.recv()
    assert a.poll() is True  # readable: recv reports EOF
    with pytest.raises(BrokenPipeError):
        a.send(1)
    with pytest.raises(OSError):
        b.send(1)


def test_simplex():
    r, w = shmkit.Pipe(duplex=False)
    assert r.readable and not r.writable and w.writable and not w.readable
    w.send("one way")
    assert r.recv() == "one way"
    with pytest.raises(OSError, match="read-only"):
        r.send(1)
    with pytest.raises(OSError, match="write-only"):
        w.recv()


def test_bad_message_length_closes():
    a, b = shmkit.Pipe()
    a.send_bytes(b"x" * 10)
    with pytest.raises(OSError, match="bad message length"):
        b.recv_bytes(5)
    assert b.closed


def test_echo_child(ctx):
    a, b = shmkit.Pipe()
    p = ctx.Process(target=helpers.conn_echo, args=(b, a))
    p.start()
    b.close()  # the child holds it now
    for x in [1, "two", {"3": 4}, b"x" * 100000]:
        a.send(x)
        assert a.recv() == x
    a.close()  # the child reads EOF and exits
    p.join(60)
    assert p.exitcode == 0


def test_big_messages(ctx):
    a, b = shmkit.Pipe()
    size = 2 << 20
    p = ctx.Process(target=helpers.big_send, args=(b, size))
    p.start()
    assert a.recv_bytes() == bytes(range(256)) * (size // 256)
    assert a.recv() == {"big": "y" * size}
    p.join(60)
    assert p.exitcode == 0


def test_child_closes_then_eof(ctx):
    a, b = shmkit.Pipe()
    p = ctx.Process(target=helpers.conn_send_close, args=(b, [1, 2, 3]))
    p.start()
    b.close()
    assert [a.recv(), a.recv(), a.recv()] == [1, 2, 3]
    with pytest.raises(EOFError):
        a.recv()
    p.join(60)


def test_peer_killed_is_eof(ctx):
    a, b = shmkit.Pipe()
    p = ctx.Process(target=helpers.conn_echo, args=(b, a))
    p.start()
    b.close()
    a.send("ping")
    assert a.recv() == "ping"
    p.kill()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL
    with pytest.raises(EOFError):
        a.recv()


def _send_later(conn, delay):
    time.sleep(delay)
    conn.send("late")


def test_fileno_and_wait(ctx):
    """A Connection has a pollable fileno(): multiprocessing.connection.wait and shmkit's own
    wait() see a message from another process; shmkit's wait() never reports a spurious
    readiness, and times out when nothing comes."""
    import multiprocessing.connection
    import select

    a, b = shmkit.Pipe()
    assert isinstance(b.fileno(), int)
    assert shmkit.connection.wait([b], timeout=0.2) == []
    p = ctx.Process(target=_send_later, args=(a, 0.3))
    p.start()
    assert shmkit.connection.wait([b], timeout=30) == [b]
    assert b.recv() == "late"
    p.join(30)
    # A second pipe: multiprocessing's own wait on the descriptor, readable when the message
    # is there.
    a, b = shmkit.Pipe()
    a.send("now")
    ready = multiprocessing.connection.wait([b], timeout=30)
    assert ready == [b] and b.poll(0) and b.recv() == "now"
    # The descriptor is a real one: select() can watch it with others.
    a.send("sel")
    r, _, _ = select.select([b.fileno()], [], [], 30)
    assert r == [b.fileno()] and b.recv() == "sel"
    a.close()
    assert shmkit.connection.wait([b], timeout=30) == [b]
    with pytest.raises(EOFError):
        b.recv()


# ---- ends shared as descriptors (issue 18) --------------------------------------------------

def test_five_senders_one_end_under_lock(ctx):
    """CPython's own pattern: one end passed to several processes, sends serialised by a Lock.
    Every message arrives (each sender's in order), then EOF once all of them are gone."""
    a, b = shmkit.Pipe(duplex=False)
    lock = shmkit.Lock()
    n = 200
    procs = [ctx.Process(target=helpers.conn_send_locked, args=(b, lock, w, n))
             for w in range(5)]
    for p in procs:
        p.start()
    b.close()  # the children hold the sending end now
    nxt = [0] * 5
    for _ in range(5 * n):
        assert a.poll(60)
        who, i = a.recv()
        assert i == nxt[who]
        nxt[who] += 1
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert a.poll(60)
    with pytest.raises(EOFError):
        a.recv()


def test_reader_and_writer_thread_one_end():
    import threading

    a, b = shmkit.Pipe()
    got = []

    def reader():
        for _ in range(500):
            got.append(a.recv())

    def echo():
        for _ in range(500):
            b.send(b.recv())

    te = threading.Thread(target=echo)
    tr = threading.Thread(target=reader)
    te.start()
    tr.start()
    for i in range(500):  # this thread writes on a while tr reads from it
        a.send(i)
    tr.join(60)
    te.join(60)
    assert got == list(range(500))


def test_child_poll_takes_nothing(ctx):
    a, b = shmkit.Pipe()
    p = ctx.Process(target=helpers.conn_poll_only, args=(b, 60))
    p.start()
    a.send("kept")
    p.join(60)
    assert p.exitcode == 0
    assert b.poll(0)
    assert b.recv() == "kept"


def test_unused_peer_closed_is_eof():
    a, b = shmkit.Pipe()
    b.close()
    assert a.poll(5)
    with pytest.raises(EOFError):
        a.recv()
    with pytest.raises(BrokenPipeError):
        a.send(1)


@pytest.mark.parametrize("kill", [False, True], ids=["exits", "killed"])
def test_unused_peer_in_dead_child_is_eof(ctx, kill):
    """The child holds b from start() on and never uses it: its exit or death is EOF, and
    until then the end is held (no EOF while it lives)."""
    a, b = shmkit.Pipe()
    p = ctx.Process(target=helpers.conn_hold_and_leave, args=(b, 0.5, kill))
    p.start()
    b.close()
    assert not a.poll(0.1)
    t0 = time.monotonic()
    assert a.poll(60)
    assert time.monotonic() - t0 < 30
    with pytest.raises(EOFError):
        a.recv()
    p.join(60)
    assert p.exitcode == (-signal.SIGKILL if kill else 0)


def test_pickled_end_is_held_until_received():
    """A Connection sent through a Queue carries a copy of its holding descriptor: the sender
    may close its own at once and the end stays held for the receiver."""
    a, b = shmkit.Pipe()
    q = shmkit.Queue()
    q.put(b)
    b.close()
    assert not a.poll(0.1)  # held by the Connection in flight
    b2 = q.get(timeout=30)
    a.send("via queue")
    assert b2.recv() == "via queue"
    b2.close()
    assert a.poll(30)
    with pytest.raises(EOFError):
        a.recv()


def test_fileno_readiness_is_exact():
    """fileno() is readable when recv() would not block, and not because time passes (no
    readiness at first, none while idle for longer than the library's slice)."""
    import select

    a, b = shmkit.Pipe()
    fd = b.fileno()
    assert select.select([fd], [], [], 1.5)[0] == []
    a.send("x")
    assert select.select([fd], [], [], 30)[0] == [fd]
    assert b.recv() == "x"
    assert select.select([fd], [], [], 0.3)[0] == []
    a.close()
    assert select.select([fd], [], [], 30)[0] == [fd]
    with pytest.raises(EOFError):
        b.recv()


def test_fileno_is_not_a_socket():
    """Documented difference: fd passing over a Connection's socket needs a socket."""
    from multiprocessing import reduction

    a, b = shmkit.Pipe()
    with pytest.raises(OSError):
        reduction.send_handle(a, 0, os.getpid())


def test_event_fileno():
    import select

    e = shmkit.Event()
    fd = e.fileno()
    if select.select([fd], [], [], 0)[0]:
        assert not e.is_set()  # spurious at first: is_set() re-arms it
    assert select.select([fd], [], [], 0.2)[0] == []
    e.set()
    assert select.select([fd], [], [], 30)[0] == [fd]


def test_unpicklable_raises_in_the_caller():
    """A README difference: multiprocessing's Queue fails later, in its feeder thread."""
    import pickle as _pickle

    a, b = shmkit.Pipe()
    q = shmkit.Queue()
    for send in (a.send, q.put):
        with pytest.raises((_pickle.PicklingError, AttributeError, TypeError)):
            send(lambda: 0)
    a.send("next")
    assert b.recv() == "next"
    q.put("next")
    assert q.get(timeout=30) == "next"
