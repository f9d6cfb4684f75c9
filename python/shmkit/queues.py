"""Queue, JoinableQueue and SimpleQueue over a shmkit queue.

Objects are pickled (a bytes object's pickle is written and read in C, without the pickler:
same bytes, less time); put_bytes()/get_bytes() move raw bytes (for C programs and `shmkit
produce/consume`). Memory: a queue reserves capacity x max_size bytes of slots up front (plus
about 20 KiB of bookkeeping); ``Queue()`` takes 1024 slots of 4 KiB, about 4 MiB in all; a bigger
maxsize gets smaller slots (down to 64 bytes) so that slots stay near 4 MiB in all; stats()
or `shmkit stat` show what was reserved. A message larger than a slot travels in a block of its own (see
_spill.py). Unlike multiprocessing's, Queue() with maxsize=0 is still bounded (by its
capacity): put blocks when it is full.

EOF: the process that makes a queue is one of its writers until it calls close(); the queue is
at EOF once every writer that came (every process that put, and the maker) has closed or died
and it is drained. get() then raises EOFError and iteration ends. With writers=N, EOF waits
until N producers besides the maker have come and gone: use it when the maker may close()
before its producers have put anything.

An object made without a name, like every such shmkit object, is removed once nobody holds it
(see _tracker.py).
"""
from . import _registry, _shmkit
from ._base import Named
from ._spill import NotAPickleError, Spill  # noqa: F401

DEFAULT_CAPACITY = 1024
DEFAULT_MAX_SIZE = 4096
MAX_DEFAULT_BYTES = 4 << 20


def _sizes(maxsize, capacity, max_size):
    if capacity is None:
        capacity = maxsize if maxsize and maxsize > 0 else DEFAULT_CAPACITY
    if max_size is None:
        max_size = max(64, min(DEFAULT_MAX_SIZE, MAX_DEFAULT_BYTES // capacity))
    return capacity, max_size


class Queue(Spill, Named, _shmkit.Queue):
    """multiprocessing.Queue(maxsize=0), in shared memory.

    put(obj, block=True, timeout=None) raises queue.Full; get(block=True, timeout=None)
    raises queue.Empty, or EOFError at EOF; put_nowait, get_nowait, qsize, empty, full,
    close, join_thread, cancel_join_thread; plus put_bytes/get_bytes, stats(), iteration
    until EOF, shutdown() (EOF for everyone now), attach(name).
    """

    _tag = "queue"
    _joinable = False

    def __init__(self, maxsize=0, *, ctx=None, name=None, capacity=None, max_size=None,
                 writers=0, mode=0o600):
        capacity, max_size = _sizes(maxsize, capacity, max_size)
        _shmkit.Queue.__init__(self, self._new_name(name), True, capacity, max_size,
                               writers + 1 if writers else 0, self._joinable, mode, True)
        self._maxsize = maxsize
        _registry.close_at_exit(self)

    def _open(self, name):
        info = _shmkit.info(name)
        if info["kind"] != "queue":
            raise _shmkit.WrongKindError("%s is a %s, not a queue" % (name, info["kind"]))
        if self._joinable and not info["flags"] & 0x4:
            raise _shmkit.WrongKindError("%s is not a joinable queue" % name)
        _shmkit.Queue.__init__(self, name, False)
        self._maxsize = 0
        _registry.close_at_exit(self)

    def put_nowait(self, obj):
        return self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def join_thread(self):
        """Nothing to wait for: put() copies the message into shared memory itself."""

    def cancel_join_thread(self):
        """Nothing to cancel (no feeder thread)."""

    def stats(self):
        """The queue's figures (shmkit_queue_stats) plus reserved_bytes: its region's size."""
        st = _shmkit.Queue.stats(self)
        st["reserved_bytes"] = _shmkit.info(self._name)["size"]
        return st

    def __iter__(self):
        while True:
            try:
                yield self.get()
            except EOFError:
                return

    def __repr__(self):
        return "<shmkit.%s %s>" % (type(self).__name__, self._name)


class JoinableQueue(Queue):
    """multiprocessing.JoinableQueue: task_done() and join() as well."""

    _tag = "jqueue"
    _joinable = True

    def join(self, timeout=None):
        """Block until every message put has been task_done()'d (or its consumer died).
        timeout is an extension: returns False if it passed."""
        return self._join(timeout)


class SimpleQueue(Queue):
    """multiprocessing.SimpleQueue: put(obj), get(), empty(), close()."""

    _tag = "squeue"

    def __init__(self, *, ctx=None, name=None, capacity=None, max_size=None, mode=0o600):
        super().__init__(0, name=name, capacity=capacity, max_size=max_size, mode=mode)


def attach_queue(name):
    info = _shmkit.info(name)
    cls = JoinableQueue if info["kind"] == "queue" and info["flags"] & 0x4 else Queue
    return cls.attach(name)
