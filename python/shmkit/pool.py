"""shmkit.Pool: multiprocessing.Pool's API on shmkit queues, surviving killed workers.

Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None, context=None,
*, retries=0, timeout=None): apply, apply_async, map, map_async, imap, imap_unordered,
starmap, starmap_async, close, terminate, join, and the context manager (whose exit
terminates, as multiprocessing's does). Works under fork, spawn and forkserver (context=).

Where it differs from multiprocessing.Pool, on purpose:
  - A worker killed while running a task (SIGKILL, the OOM killer, a segfault) does not hang
    the pool: that task's result is WorkerDied (a multiprocessing.ProcessError, so handlers of
    multiprocessing's process failures catch it; also a concurrent.futures BrokenProcessPool),
    naming the worker and its signal, or the task runs again while it has retries left
    (retries=N, per pool or per call). A replacement worker starts; every other task
    completes. A chunk of map/imap is one task, as in multiprocessing.
  - timeout=S (per pool or per call): a task running longer than S seconds has its worker
    killed and replaced; its result is TaskTimeout (a WorkerDied).
  - An initializer that raises breaks the pool (BrokenProcessPool for pending and new tasks)
    instead of restarting workers forever.
  - terminate() fails the results still pending (BrokenProcessPool) instead of leaving their
    get() to block forever.
"""
import collections
import itertools
import multiprocessing
import os
import threading
from multiprocessing import TimeoutError

from . import _engine
from ._engine import MAPCHUNK, STARCHUNK, CALL, Source, TaskTimeout, WorkerDied

__all__ = ["Pool", "WorkerDied", "TaskTimeout", "AsyncResult", "ApplyResult", "MapResult",
           "IMapIterator", "IMapUnorderedIterator"]


class ApplyResult:
    """What apply_async returns: get(timeout=None), wait(timeout=None), ready(),
    successful()."""

    def __init__(self, callback=None, error_callback=None):
        self._event = threading.Event()
        self._callback = callback
        self._error_callback = error_callback
        self._success = None
        self._value = None

    def ready(self):
        return self._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError("{0!r} not ready".format(self))
        return self._success

    def wait(self, timeout=None):
        self._event.wait(timeout)

    def get(self, timeout=None):
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    def _set(self, task, ok, value):
        self._success, self._value = ok, value
        if ok and self._callback:
            self._callback(value)
        if not ok and self._error_callback:
            self._error_callback(value)
        self._event.set()


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """map_async's result: the list once every chunk is in (the first error otherwise)."""

    def __init__(self, length, chunksize, callback, error_callback):
        super().__init__(callback, error_callback)
        self._success = True
        self._value = [None] * length
        self._chunksize = chunksize
        self._left = (length + chunksize - 1) // chunksize if chunksize else 0
        self._lock = threading.Lock()
        if self._left == 0:
            self._finish()

    def _finish(self):
        if self._success and self._callback:
            self._callback(self._value)
        if not self._success and self._error_callback:
            self._error_callback(self._value)
        self._event.set()

    def _set(self, task, ok, value):
        with self._lock:
            self._left -= 1
            if ok and self._success:
                i = task.index * self._chunksize
                self._value[i:i + len(value)] = value
            elif not ok and self._success:
                self._success, self._value = False, value  # the first error only
            last = self._left == 0
        if last:
            self._finish()


class IMapIterator:
    """imap's iterator: results in order; next(timeout=None) raises TimeoutError."""

    _ordered = True
    _timeout_error = TimeoutError

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._items = collections.deque()
        self._unsorted = {}
        self._index = 0  # next index to deliver in order
        self._length = None

    def __iter__(self):
        return self

    def next(self, timeout=None):
        with self._cond:
            try:
                item = self._items.popleft()
            except IndexError:
                if self._index == self._length:
                    raise StopIteration from None
                self._cond.wait(timeout)
                try:
                    item = self._items.popleft()
                except IndexError:
                    if self._index == self._length:
                        raise StopIteration from None
                    raise self._timeout_error from None
        ok, value = item
        if ok:
            return value
        raise value

    __next__ = next

    def _set(self, task, ok, value):
        self._put(task.index, (ok, value))

    def _put(self, i, item):
        with self._cond:
            if not self._ordered or self._index == i:
                self._items.append(item)
                self._index += 1
                while self._index in self._unsorted:
                    self._items.append(self._unsorted.pop(self._index))
                    self._index += 1
                self._cond.notify()
            else:
                self._unsorted[i] = item
            if self._index == self._length:
                self._cond.notify()

    def _set_length(self, length):
        with self._cond:
            self._length = length
            if self._index == length:
                self._cond.notify()


class IMapUnorderedIterator(IMapIterator):
    _ordered = False


AUTO_CHUNK_MAX = 1024  # map's own chunks stay small enough to travel in one slot


def _chunks(iterable, size):
    if isinstance(iterable, (range, list, tuple)):
        # Slices, not islice: a list's is a copy of pointers; a range's is a range, which
        # pickles in a few bytes whatever its length.
        for i in range(0, len(iterable), size):
            yield iterable[i:i + size]
        return
    it = iter(iterable)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


class Pool:
    """multiprocessing.Pool on shmkit (see the module's docstring)."""

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 context=None, *, retries=0, timeout=None):
        if processes is None:
            processes = os.cpu_count() or 1
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            if not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0:
                raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        _check_extras(retries, timeout)
        self._ctx = context or multiprocessing.get_context()
        self._processes = processes
        self._engine = _engine.Engine(processes, initializer, initargs, maxtasksperchild,
                                      self._ctx, "pool", retries, timeout)

    def __repr__(self):
        state = {0: "RUN", 1: "CLOSE", 2: "TERMINATE", 3: "BROKEN"}[self._engine.state]
        return "<%s.%s state=%s pool_size=%d>" % (type(self).__module__, type(self).__qualname__,
                                                   state, self._processes)

    # -- single calls -------------------------------------------------------------------------
    def apply(self, func, args=(), kwds={}):
        """Equivalent of func(*args, **kwds), run in a worker."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None, *,
                    retries=None, timeout=None):
        """Run func(*args, **kwds) in a worker; returns an ApplyResult."""
        e = self._engine
        e.check_running()
        _check_extras(retries, timeout)
        result = ApplyResult(callback, error_callback)
        t = e.make_task(CALL, func, args, kwds, result._set, retries=retries, timeout=timeout)
        if t is not None:
            e.submit((t,))
        return result

    # -- maps ---------------------------------------------------------------------------------
    def map(self, func, iterable, chunksize=None):
        """list(map(func, iterable)) across the workers; blocks until done."""
        return self._map_async(func, iterable, MAPCHUNK, chunksize).get()

    def starmap(self, func, iterable, chunksize=None):
        """Like map(), each item being unpacked as arguments: func(*item)."""
        return self._map_async(func, iterable, STARCHUNK, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None, *,
                  retries=None, timeout=None):
        return self._map_async(func, iterable, MAPCHUNK, chunksize, callback, error_callback,
                               retries, timeout)

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None,
                      *, retries=None, timeout=None):
        return self._map_async(func, iterable, STARCHUNK, chunksize, callback, error_callback,
                               retries, timeout)

    def _map_async(self, func, iterable, kind, chunksize=None, callback=None,
                   error_callback=None, retries=None, timeout=None):
        e = self._engine
        e.check_running()
        _check_extras(retries, timeout)
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        if chunksize is None:
            # multiprocessing's choice (4 chunks per worker), capped: smaller messages
            # pipeline better and fit a queue slot.
            chunksize, extra = divmod(len(iterable), self._processes * 4)
            if extra:
                chunksize += 1
            chunksize = min(chunksize, AUTO_CHUNK_MAX)
        if len(iterable) == 0:
            chunksize = 0
        elif chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
        result = MapResult(len(iterable), chunksize, callback, error_callback)
        if chunksize:
            # Chunks are made as workers have room (a Source), so the first ones run while
            # the rest are still being cut and pickled.
            chunks = enumerate(_chunks(iterable, chunksize))
            left = [result._left]

            def make():
                try:
                    for i, chunk in chunks:
                        left[0] -= 1
                        t = e.make_task(kind, func, chunk, {}, result._set, i, retries,
                                        timeout)
                        return t if t is not None else _engine.Task(0, None, None, i, 0, None)
                except Exception as exc:  # the iterable raised: the map fails with it
                    abort(exc)
                return None

            def abort(exc):
                while left[0] > 0:
                    left[0] -= 1
                    result._set(_engine.Task(0, None, None, 0, 0, None), False, exc)

            e.submit((Source(make, abort),))
        return result

    def imap(self, func, iterable, chunksize=1, *, retries=None, timeout=None):
        """Like map(), lazily: an iterator of results in order."""
        return self._imap(IMapIterator, func, iterable, chunksize, retries, timeout)

    def imap_unordered(self, func, iterable, chunksize=1, *, retries=None, timeout=None):
        """Like imap(), results in the order they come."""
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize, retries, timeout)

    def _imap(self, cls, func, iterable, chunksize, retries, timeout):
        e = self._engine
        e.check_running()
        _check_extras(retries, timeout)
        if chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
        result = cls()
        if isinstance(iterable, range) and chunksize > 1:
            iterable = _chunks(iterable, chunksize)  # whole chunks: ranges, pickled small
            chunksize = -1
        it = iter(iterable)
        counter = itertools.count()
        if chunksize == 1:
            def make():
                i = next(counter)
                try:
                    x = next(it)
                except StopIteration:
                    result._set_length(i)
                    return None
                except Exception as exc:
                    result._put(i, (False, exc))
                    result._set_length(i + 1)
                    return None
                t = e.make_task(CALL, func, (x,), {}, result._set, i, retries, timeout)
                return t if t is not None else _engine.Task(0, None, None, i, 0, None)
        else:
            def make():
                i = next(counter)
                try:
                    if chunksize == -1:
                        chunk = next(it, None) or []
                    else:
                        chunk = list(itertools.islice(it, chunksize))
                except Exception as exc:
                    result._put(i, (False, exc))
                    result._set_length(i + 1)
                    return None
                if not chunk:
                    result._set_length(i)
                    return None
                t = e.make_task(MAPCHUNK, func, chunk, {}, result._set, i, retries, timeout)
                return t if t is not None else _engine.Task(0, None, None, i, 0, None)

        def abort(exc):
            i = next(counter)
            result._put(i, (False, exc))
            result._set_length(i + 1)

        e.submit((Source(make, abort),))
        if chunksize == 1:
            return result
        return _flatten(result)

    # -- ending -------------------------------------------------------------------------------
    def close(self):
        """No more tasks: the workers exit once the submitted ones are done."""
        self._engine.close()

    def terminate(self):
        """Stop the workers now; results still pending fail (BrokenProcessPool)."""
        self._engine.terminate()

    def join(self):
        """Wait for the workers to exit; call close() or terminate() first."""
        if self._engine.state in (_engine.RUN,):
            raise ValueError("Pool is still running")
        self._engine.join()

    def __enter__(self):
        self._engine.check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()

    @property
    def _pool(self):
        """The worker Process objects (as multiprocessing.Pool has)."""
        return self._engine.processes()

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")


def _flatten(result):
    for chunk in result:
        yield from chunk


def _check_extras(retries, timeout):
    if retries is not None and (not isinstance(retries, int) or retries < 0):
        raise ValueError("retries must be a non-negative int, not %r" % (retries,))
    if timeout is not None and not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds, not %r" % (timeout,))

