"""get_context(): multiprocessing's context API with shmkit's objects.

shmkit.get_context(method=None) returns a context whose Lock, RLock, Semaphore,
BoundedSemaphore, Event, Condition, Barrier, Queue, JoinableQueue, SimpleQueue, Pipe, Value,
Array, RawValue and RawArray are shmkit's, and whose Process (and everything else a
multiprocessing context has: Pool, Manager, cpu_count, get_start_method, ...) is that of
multiprocessing.get_context(method): 'fork', 'spawn', 'forkserver', or None for the default.
shmkit objects pickle by name (a Connection with a copy of its holding descriptor), so they
work under every start method; the context decides how children start.

Every `ctx=` argument of shmkit's constructors takes such a context, or a multiprocessing one,
or None; anything else is a TypeError (it is never silently ignored). Where multiprocessing
uses the context to make a lock (Value and Array with lock=True or None), a multiprocessing
context makes it as multiprocessing would; a shmkit context uses the object's own RLock.
"""
import multiprocessing
import multiprocessing.context


def check_ctx(ctx):
    """ctx as a constructor's ctx= argument: None, a shmkit context or a multiprocessing
    context; anything else raises TypeError."""
    if ctx is None or isinstance(ctx, (ShmkitContext, multiprocessing.context.BaseContext)):
        return ctx
    raise TypeError("ctx must be a multiprocessing or shmkit context, not %s"
                    % type(ctx).__name__)


class ShmkitContext:
    """A multiprocessing context whose synchronisation objects, queues, pipes and shared
    ctypes are shmkit's; the rest (Process first) is multiprocessing's for the start method."""

    def __init__(self, mp_context):
        self._mp = mp_context

    def __getattr__(self, attr):
        # Process, Pool, Manager, cpu_count, get_start_method, set_executable, ...
        if attr == "_mp":
            raise AttributeError(attr)
        return getattr(self._mp, attr)

    def __repr__(self):
        return "<shmkit context %r>" % self._mp.get_start_method()

    def get_context(self, method=None):
        return get_context(method)

    def get_start_method(self, allow_none=False):
        return self._mp.get_start_method(allow_none)

    @property
    def Process(self):
        return self._mp.Process

    def Lock(self):
        from .synchronize import Lock
        return Lock(ctx=self)

    def RLock(self):
        from .synchronize import RLock
        return RLock(ctx=self)

    def Semaphore(self, value=1):
        from .synchronize import Semaphore
        return Semaphore(value, ctx=self)

    def BoundedSemaphore(self, value=1):
        from .synchronize import BoundedSemaphore
        return BoundedSemaphore(value, ctx=self)

    def Event(self):
        from .synchronize import Event
        return Event(ctx=self)

    def Condition(self, lock=None):
        from .synchronize import Condition
        return Condition(lock, ctx=self)

    def Barrier(self, parties, action=None, timeout=None):
        from .synchronize import Barrier
        return Barrier(parties, action, timeout, ctx=self)

    def Queue(self, maxsize=0):
        from .queues import Queue
        return Queue(maxsize, ctx=self)

    def JoinableQueue(self, maxsize=0):
        from .queues import JoinableQueue
        return JoinableQueue(maxsize, ctx=self)

    def SimpleQueue(self):
        from .queues import SimpleQueue
        return SimpleQueue(ctx=self)

    def Pipe(self, duplex=True):
        from .connection import Pipe
        return Pipe(duplex)

    def Value(self, typecode_or_type, *args, lock=True):
        from .sharedctypes import Value
        return Value(typecode_or_type, *args, lock=lock, ctx=self)

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        from .sharedctypes import Array
        return Array(typecode_or_type, size_or_initializer, lock=lock, ctx=self)

    def RawValue(self, typecode_or_type, *args):
        from .sharedctypes import RawValue
        return RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        from .sharedctypes import RawArray
        return RawArray(typecode_or_type, size_or_initializer)


_contexts = {}


def get_context(method=None):
    """multiprocessing.get_context(method) with shmkit's objects (see the module docstring).
    ValueError for an unknown start method, as multiprocessing raises."""
    mp = multiprocessing.get_context(method)
    key = mp.get_start_method()
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = _contexts[key] = ShmkitContext(mp)
    return ctx
