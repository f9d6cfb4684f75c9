"""Pipe(duplex=True) -> (Connection, Connection), over a shmkit pipe.

A Connection holds its end as a file descriptor would: a fork child holds what its parent held,
a Connection pickled to a child or another process (spawn, forkserver, a Queue) passes a copy of
the descriptor that holds the end, and any process holding an end may send and receive on it.
The peer reads EOFError (and send raises BrokenPipeError) once every process holding the end
closed it or died, whether or not it used it -- so, as with multiprocessing, a child must close
the ends it inherited and does not use if the parent waits for EOF. poll() waits without taking
the message. Each direction holds 256 messages of up to 4 KiB (2 MiB for a duplex pipe); bigger
ones travel in a block of their own (see _spill.py).
"""
import os

from . import _registry, _shmkit
from ._spill import Spill

DEFAULT_CAPACITY = 256
DEFAULT_MAX_SIZE = 4096


def _attach_conn(name, end, readable, writable, held=None):
    """Rebuild a pickled Connection: hold the end through the passed descriptor when it can
    be had (a child, or a process the resource sharer serves), else by name, as a new holder
    (an end whose holders have all gone raises OSError)."""
    fd = -1
    if held is not None:
        try:
            fd = held.detach()
        except Exception:
            fd = -1
    try:
        return Connection(name, end, readable, writable, fd)
    finally:
        if fd >= 0:
            os.close(fd)


class Connection(Spill, _shmkit.Connection):
    """multiprocessing.connection.Connection: send/recv (pickled), send_bytes/recv_bytes/
    recv_bytes_into, poll(timeout=0.0), close(), closed/readable/writable."""

    def __init__(self, name, end, readable=True, writable=True, fd=-1):
        _shmkit.Connection.__init__(self, name, end, readable, writable, fd)

    def __reduce__(self):
        # As multiprocessing's reduce_connection: a copy of the holding descriptor travels
        # (inherited by a spawned child, or served by the resource sharer), so the end stays
        # held from here until the receiver holds it.
        from multiprocessing import reduction
        held = reduction.DupFd(self._hold_fd())
        return (_attach_conn, (_registry.sent(self.name), self.end, self.readable, self.writable,
                               held))

    def fileno(self):
        """A descriptor for select, asyncio's add_reader and multiprocessing.connection.wait:
        readable when recv() would not block (a message, or EOF), and not otherwise, except
        when some process that had the pipe open closes it or exits (then recv() may still
        block; a poll(0) that finds nothing makes it unreadable again). Never readable just
        because time passed. It is not a socket: reduction.send_handle/recv_handle, which
        pass descriptors over a Connection's socket, do not work on a shmkit Connection
        (OSError ENOTSOCK); pass descriptors over a multiprocessing Pipe or a unix socket."""
        return self._fd()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<shmkit.Connection %s end %d%s>" % (self.name, self.end,
                                                    " closed" if self.closed else "")


def wait(object_list, timeout=None):
    """multiprocessing.connection.wait for shmkit Connections (and anything with fileno()):
    the objects ready to recv() without blocking, waiting at most `timeout` seconds (None:
    for ever). A shmkit Connection whose descriptor is readable because a process closed the
    pipe (see fileno()) is reported only once poll() confirms a message or EOF."""
    import selectors
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for obj in object_list:
            sel.register(obj, selectors.EVENT_READ)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = []
            for key, _ in sel.select(left):
                obj = key.fileobj
                if not isinstance(obj, Connection) or obj.poll(0):
                    ready.append(obj)
            if ready or (deadline is not None and time.monotonic() >= deadline):
                return ready


def Pipe(duplex=True, *, name=None, capacity=DEFAULT_CAPACITY, max_size=DEFAULT_MAX_SIZE,
         mode=0o600):
    anonymous = name is None
    if anonymous:
        name = _registry.new_name("pipe")
    else:
        _registry.check_name(name)
    _shmkit.create_pipe(name, capacity, max_size, not duplex, mode)
    if duplex:
        ends = Connection(name, 0), Connection(name, 1)
    else:
        # simplex: end 0 only sends, end 1 only receives; multiprocessing returns (reader, writer)
        ends = Connection(name, 1, True, False), Connection(name, 0, False, True)
    if anonymous:
        _registry.own(name, *ends)
    return ends
