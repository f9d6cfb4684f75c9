"""Pipe and Connection."""
import multiprocessing
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
    p = ctx.Process(target=helpers.conn_echo, args=(b,))
    p.start()
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
    assert [a.recv(), a.recv(), a.recv()] == [1, 2, 3]
    with pytest.raises(EOFError):
        a.recv()
    p.join(60)


def test_peer_killed_is_eof(ctx):
    a, b = shmkit.Pipe()
    p = ctx.Process(target=helpers.conn_echo, args=(b,))
    p.start()
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
    # (the child used end a: it is closed now, as an end is one process's.) A second pipe:
    # multiprocessing's own wait on the descriptor, readable when the message is there.
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
