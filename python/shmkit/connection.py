"""Pipe(duplex=True) -> (Connection, Connection), over a shmkit pipe.

Each end is attached by the first process that uses it and belongs to that process until it
closes or dies; the peer then reads EOFError (send raises BrokenPipeError). A Connection passed
to a child (inherited, or pickled by name under spawn/forkserver) attaches there; the parent's
copy must not have been used. poll() receives the next message early and keeps it. Each
direction holds 256 messages of up to 4 KiB (2 MiB for a duplex pipe); bigger ones travel in a
block of their own (see _spill.py).
"""
from . import _registry, _shmkit
from ._spill import Spill

DEFAULT_CAPACITY = 256
DEFAULT_MAX_SIZE = 4096


def _attach_conn(name, end, readable, writable):
    return Connection(name, end, readable, writable)


class Connection(Spill, _shmkit.Connection):
    """multiprocessing.connection.Connection: send/recv (pickled), send_bytes/recv_bytes/
    recv_bytes_into, poll(timeout=0.0), close(), closed/readable/writable."""

    def __init__(self, name, end, readable=True, writable=True):
        _shmkit.Connection.__init__(self, name, end, readable, writable)

    def __reduce__(self):
        return (_attach_conn, (_registry.sent(self.name), self.end, self.readable,
                               self.writable))

    def fileno(self):
        """A descriptor that is readable when recv() may not block (a message, or EOF), for
        select, asyncio's add_reader and multiprocessing.connection.wait. Readiness can be
        spurious (at first, once a second): confirm with poll(), or use shmkit's wait()."""
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
    for ever). A shmkit Connection's descriptor may be readable spuriously; it is reported
    only once poll() confirms a message or EOF, and re-armed otherwise."""
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
