"""shmkit.futures.ProcessPoolExecutor: concurrent.futures' process pool on shmkit queues.

ProcessPoolExecutor(max_workers=None, mp_context=None, initializer=None, initargs=(), *,
max_tasks_per_child=None, retries=0, timeout=None): submit(fn, /, *args, **kwargs) -> Future,
map(fn, *iterables, timeout=None, chunksize=1), shutdown(wait=True, *, cancel_futures=False),
the context manager. Under fork, spawn and forkserver (mp_context=).

Unlike concurrent.futures', a worker that dies does not break the executor: only the task it
was running fails, with WorkerDied -- a BrokenProcessPool, the exception code written for
concurrent.futures already handles -- naming the worker and its signal (or the task runs again
while it has retries left: retries=N); a replacement worker starts and every other future
completes. timeout=S kills and replaces a worker whose task runs longer than S seconds
(TaskTimeout, a WorkerDied). An initializer that raises still breaks the executor, as in
concurrent.futures (BrokenProcessPool for every pending and later task). max_tasks_per_child
works under every start method, fork included.
"""
import concurrent.futures as _cf
import itertools
import multiprocessing
import os
import sys
import threading
import time
import weakref

from . import _engine
from ._engine import CALL, STARCHUNK, TaskTimeout, WorkerDied
from .pool import IMapIterator

BrokenProcessPool = _cf.process.BrokenProcessPool

# As concurrent.futures: when the interpreter shuts down (before atexit handlers), every
# executor finishes its work and refuses new work -- unless the program is ending on Ctrl-C,
# when nobody waits for the work.
_global_shutdown = False
_executors = weakref.WeakSet()


def _python_exit():
    global _global_shutdown
    _global_shutdown = True
    interrupted = isinstance(getattr(sys, "last_value", None), KeyboardInterrupt)
    for ex in list(_executors):
        if interrupted:
            ex._terminate()
        else:
            ex.shutdown(wait=True)


if hasattr(threading, "_register_atexit"):
    threading._register_atexit(_python_exit)

__all__ = ["ProcessPoolExecutor", "BrokenProcessPool", "WorkerDied", "TaskTimeout"]


# An executor's Task carries its Future where a map's carries the chunk's position (index).
def _future_sink(task, ok, value):
    fut = task.index
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def _future_start(task):
    return task.index.set_running_or_notify_cancel()


def _future_cancel(task):
    task.index.cancel()


class _MapResults(IMapIterator):
    _timeout_error = _cf.TimeoutError

    def __init__(self):
        super().__init__()
        self.cancelled = False

    def start(self, task):
        return not self.cancelled

    def cancel(self, task):
        self._put(task.index, (False, _cf.CancelledError()))


class ProcessPoolExecutor(_cf.Executor):
    """concurrent.futures.ProcessPoolExecutor on shmkit (see the module's docstring)."""

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None, retries=0, timeout=None):
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        if retries is not None and (not isinstance(retries, int) or retries < 0):
            raise ValueError("retries must be a non-negative int, not %r" % (retries,))
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds, not %r"
                             % (timeout,))
        if mp_context is None:
            # As concurrent.futures: workers with a limited life are spawned by default.
            mp_context = multiprocessing.get_context(
                "spawn" if max_tasks_per_child is not None else None)
        self._mp_context = mp_context
        self._max_workers = max_workers
        self._shutdown_lock = threading.Lock()
        self._shutdown = False
        self._engine = _engine.Engine(max_workers, initializer, initargs, max_tasks_per_child,
                                      self._mp_context, "executor", retries, timeout)
        _executors.add(self)
        # An executor dropped without shutdown() finishes its work and lets its workers go,
        # as concurrent.futures' does.
        weakref.finalize(self, self._engine.close)

    def _check(self):
        if _global_shutdown:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        if self._engine.broken is not None:
            raise BrokenProcessPool(str(self._engine.broken))
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def submit(self, fn, /, *args, **kwargs):
        with self._shutdown_lock:
            self._check()
            fut = _cf.Future()
            e = self._engine
            t = e.make_task(CALL, fn, args, kwargs, _future_sink, fut, start=_future_start,
                            cancel=_future_cancel)
            if t is None:
                return fut
            try:
                e.submit((t,))
            except ValueError:
                raise RuntimeError("cannot schedule new futures after shutdown") from None
            return fut

    submit.__doc__ = _cf.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Like map(fn, *iterables) with the calls made in the workers, chunksize items to a
        message; results in order; TimeoutError if one is not ready `timeout` seconds after
        this call. A failed chunk raises its error when its first item is reached."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        with self._shutdown_lock:
            self._check()
            e = self._engine
            results = _MapResults()
            args = zip(*iterables)
            tasks = []
            if chunksize == 1:
                n = 0
                for a in args:
                    t = e.make_task(CALL, fn, a, {}, results._set, n, start=results.start,
                                    cancel=results.cancel)
                    if t is not None:
                        tasks.append(t)
                    n += 1
            else:
                n = 0
                while True:
                    chunk = list(itertools.islice(args, chunksize))
                    if not chunk:
                        break
                    t = e.make_task(STARCHUNK, fn, chunk, {}, results._set, n,
                                    start=results.start, cancel=results.cancel)
                    if t is not None:
                        tasks.append(t)
                    n += 1
            results._set_length(n)
            e.submit(tasks)
        return _result_iterator(results, end_time, chunksize > 1)

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._shutdown_lock:
            self._shutdown = True
        if cancel_futures:
            self._engine.cancel_pending()
        self._engine.close()
        if wait:
            self._engine.join()

    shutdown.__doc__ = _cf.Executor.shutdown.__doc__

    def __exit__(self, exc_type, exc_val, exc_tb):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            # Ctrl-C: stop now rather than wait for the work (as shutdown(wait=True) would).
            self._terminate()
            return False
        return super().__exit__(exc_type, exc_val, exc_tb)

    def _terminate(self):
        with self._shutdown_lock:
            self._shutdown = True
        self._engine.terminate()

    @property
    def _processes(self):
        """{pid: Process} of the live workers (as concurrent.futures' executor has)."""
        return {p.pid: p for p in self._engine.processes()}


def _result_iterator(results, end_time, chunked):
    # No local name holds a result once it is yielded (callers expect it freed once they
    # drop it), as in concurrent.futures.
    try:
        while True:
            if end_time is None:
                timeout = None
            else:
                timeout = max(0.0, end_time - time.monotonic())
            if chunked:
                chunk = results.next(timeout)
                chunk.reverse()
                while chunk:
                    yield chunk.pop()
            else:
                yield results.next(timeout)
    except StopIteration:
        return
    finally:
        results.cancelled = True
