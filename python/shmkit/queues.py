"""Queue, JoinableQueue and SimpleQueue over a shmkit queue.

Objects are pickled (a bytes object's pickle is written and read in C, without the pickler:
same bytes, less time); put_bytes()/get_bytes() move raw bytes (for C programs and `shmkit
produce/consume`). Any message up to max_size bytes (2 GiB - 1 by default) goes through the
queue's ring: one slot when it fits (4 KiB by default), several consecutive slots when it is
longer, and a message longer than the whole ring streams through it while its consumer reads.
Memory: capacity x slot_size bytes of slots (plus about 20 KiB of bookkeeping): Queue() takes
1024 slots of 4 KiB, about 4 MiB in all; a bigger maxsize gets smaller slots (down to 256
bytes) so that slots stay near 4 MiB; stats() or `shmkit stat` show what was reserved.

put() blocks only with a maxsize, as multiprocessing's: Queue(maxsize=N) has N slots and put
blocks while they are taken: N messages of up to a slot each (max_size=M makes slots of M
bytes when N x M is at most 16 MiB); a longer message takes several slots, and one longer than the whole ring
is handed over while a consumer reads it (its put returns then).
Without one, put never blocks: a message that finds the ring full (or messages of this process
still waiting) joins a process-local buffer that a feeder thread puts into the ring in order
(see src/queue.c), with multiprocessing's caveats: a process that buffered messages waits at
exit until they are in the ring, unless cancel_join_thread() was called (then they may be
lost); join_thread() after close() waits for that flush.

EOF: the process that makes a queue is one of its writers until it calls close(); the queue is
at EOF once every writer that came (every process that put, and the maker) has closed or died
and it is drained. get() then raises EOFError and iteration ends. With writers=N, EOF waits
until N producers besides the maker have come and gone: use it when the maker may close()
before its producers have put anything.

An object made without a name, like every such shmkit object, is removed once nobody holds it
(see _tracker.py).
"""
import os
import sys
import threading
import traceback
from multiprocessing import util

from . import _registry, _shmkit
from .context import check_ctx
from ._base import Named
from ._spill import NotAPickleError

# Feeder threads running in this process -> their queue: joined at exit unless the queue's
# cancel_join_thread() was called (multiprocessing's behaviour).
_feeders = {}
_feeders_lock = threading.Lock()

DEFAULT_CAPACITY = 1024
DEFAULT_SLOT_SIZE = 4096
MIN_SLOT_SIZE = 256
MAX_DEFAULT_BYTES = 4 << 20
DEFAULT_MAX_SIZE = 0x7FFFFFFF  # the library's largest message (a get returns an int)
ONE_SLOT_BYTES = 16 << 20  # a max_size whose slots fit this sizes them: one per message


def _sizes(maxsize, capacity, max_size, slot_size):
    if capacity is None:
        capacity = maxsize if maxsize and maxsize > 0 else DEFAULT_CAPACITY
    if slot_size is None:
        if max_size is not None and (max_size <= DEFAULT_SLOT_SIZE or
                                     max_size * capacity <= ONE_SLOT_BYTES):
            slot_size = max_size or 1  # every message in one slot, as before slots existed
        else:
            slot_size = max(MIN_SLOT_SIZE,
                            min(DEFAULT_SLOT_SIZE, MAX_DEFAULT_BYTES // capacity))
    if max_size is None:
        max_size = DEFAULT_MAX_SIZE
    return capacity, max_size, min(slot_size, max_size) or 1


class Queue(Named, _shmkit.Queue):
    """multiprocessing.Queue(maxsize=0), in shared memory.

    put(obj, block=True, timeout=None) raises queue.Full (only with a maxsize: without one
    put never blocks); get(block=True, timeout=None) raises queue.Empty, or EOFError at EOF;
    put_nowait, get_nowait, qsize, empty, full, close, join_thread, cancel_join_thread; plus
    put_many/get_many, put_bytes/get_bytes, fileno(), stats(), iteration until EOF,
    shutdown() (EOF for everyone now), attach(name).
    """

    _tag = "queue"
    _joinable = False
    _joincancelled = False
    _NotAPickle = NotAPickleError
    _thread = None

    def __init__(self, maxsize=0, *, ctx=None, name=None, capacity=None, max_size=None,
                 slot_size=None, writers=0, mode=0o600):
        check_ctx(ctx)  # a context, or TypeError: never silently ignored (context.py)
        capacity, max_size, slot_size = _sizes(maxsize, capacity, max_size, slot_size)
        _shmkit.Queue.__init__(self, self._new_name(name), True, capacity, max_size,
                               writers + 1 if writers else 0, self._joinable, mode, True,
                               bool(maxsize and maxsize > 0), slot_size)
        self._maxsize = maxsize
        _registry.close_at_exit(self)

    @classmethod
    def attach(cls, name, maxsize=0):
        """Open the queue called `name` (made by Python, C or `shmkit create`); its kind is
        checked (WrongKindError). put() blocks while it is full only if maxsize > 0."""
        _registry.check_name(name)
        obj = cls.__new__(cls)
        obj._name = name
        obj._open(name, maxsize)
        return obj

    def _open(self, name, maxsize=0):
        info = _shmkit.info(name)
        if info["kind"] != "queue":
            raise _shmkit.WrongKindError("%s is a %s, not a queue" % (name, info["kind"]))
        if self._joinable and not info["flags"] & 0x4:
            raise _shmkit.WrongKindError("%s is not a joinable queue" % name)
        _shmkit.Queue.__init__(self, name, False, bounded=bool(maxsize and maxsize > 0))
        self._maxsize = maxsize
        _registry.close_at_exit(self)

    def _reduce_args(self):
        return (self._maxsize,) if self._maxsize and self._maxsize > 0 else ()

    def put_nowait(self, obj):
        return self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def _start_feeder(self):
        # Called by put (src/queue.c) when a message is buffered and no feeder runs.
        t = threading.Thread(target=self._feeder, name="QueueFeederThread", daemon=True)
        with _feeders_lock:
            _feeders[t] = self
        try:
            t.start()
        except BaseException:
            with _feeders_lock:
                _feeders.pop(t, None)
            raise
        self._thread = t

    def _feeder(self):
        try:
            self._feed()
        except Exception:
            # As multiprocessing's feeder: the error is printed, the buffer is lost.
            if not util.is_exiting():
                traceback.print_exc(file=sys.stderr)
        finally:
            with _feeders_lock:
                _feeders.pop(threading.current_thread(), None)

    def join_thread(self):
        """After close(): wait until the messages this process buffered are in the queue
        (the feeder thread has ended). Returns at once after cancel_join_thread()."""
        assert self._closed, "Queue {0!r} not closed".format(self)
        t = self._thread
        if t is not None and not self._joincancelled and t is not threading.current_thread():
            t.join()

    def cancel_join_thread(self):
        """Do not wait for the feeder at exit (nor in join_thread()): messages this process
        still buffers when it exits are lost."""
        self._joincancelled = True

    def stats(self):
        """The queue's figures (shmkit_queue_stats) plus buffered (this process's messages
        waiting for the feeder) and reserved_bytes: its region's size."""
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


def _join_feeders():
    """At exit, before the queues are closed: wait for every feeder whose queue did not
    cancel_join_thread() (a consumer that never reads makes this wait for ever, as in
    multiprocessing: see its "Joining processes that use queues")."""
    while True:
        with _feeders_lock:
            todo = [t for t, q in _feeders.items() if not q._joincancelled and t.is_alive()]
        if not todo:
            return
        for t in todo:
            t.join()


def _feeders_after_fork():
    # The parent's threads are not the child's; its lock may have been held.
    global _feeders_lock
    _feeders_lock = threading.Lock()
    _feeders.clear()


def _install(_=None):
    util.Finalize(None, _join_feeders, exitpriority=-5)


_install()
util.register_after_fork(_registry._anchor, _install)
os.register_at_fork(after_in_child=_feeders_after_fork)


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

    def __init__(self, *, ctx=None, name=None, capacity=None, max_size=None, slot_size=None,
                 mode=0o600):
        check_ctx(ctx)
        super().__init__(0, name=name, capacity=capacity, max_size=max_size,
                         slot_size=slot_size, mode=mode)


def attach_queue(name):
    info = _shmkit.info(name)
    cls = JoinableQueue if info["kind"] == "queue" and info["flags"] & 0x4 else Queue
    return cls.attach(name)
