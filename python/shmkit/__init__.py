"""shmkit: multiprocessing's primitives in named POSIX shared memory.

The classes mirror multiprocessing's names, signatures and exceptions; every object lives in
a shmkit region, so Python processes, C programs linking libshmkit and the `shmkit` tool can
share one queue, lock or counter by name (attach(name), or Class.attach(name)). Objects pickle
by name: pass them to multiprocessing.Process children under fork, spawn or forkserver.
Objects made without a name are removed once nobody holds them, at the latest moments after
the program's last process ended, however it ended (see _tracker.py).
"""
from multiprocessing import BufferTooShort  # what recv_bytes_into raises, as multiprocessing's

from . import _shmkit
from .connection import Connection, Pipe
from . import futures
from .pool import Pool, TaskTimeout, WorkerDied
from .context import get_context
from .queues import JoinableQueue, NotAPickleError, Queue, SimpleQueue
from .shared_memory import SharedMemory
from .sharedctypes import (Array, RawArray, RawValue, Synchronized, SynchronizedArray,
                           SynchronizedString, Value)
from .synchronize import (Barrier, BoundedSemaphore, BrokenBarrierError, Condition,
                          DeadlockError, Event, Lock, OwnerDiedWarning, RLock, Semaphore)

WrongKindError = _shmkit.WrongKindError
CValue = _shmkit.CValue
info = _shmkit.info
remove = _shmkit.remove
__version__ = _shmkit.VERSION

__all__ = ["Array", "Barrier", "BoundedSemaphore", "BrokenBarrierError", "BufferTooShort",
           "CValue", "Condition", "Connection", "DeadlockError", "Event", "JoinableQueue", "Lock",
           "NotAPickleError", "OwnerDiedWarning", "Pipe", "Pool", "Queue", "RLock", "RawArray",
           "RawValue", "Semaphore", "SharedMemory", "SimpleQueue", "Synchronized",
           "SynchronizedArray", "SynchronizedString", "TaskTimeout", "Value", "WorkerDied",
           "WrongKindError", "attach", "get_context", "info", "remove"]


def attach(name):
    """Open the object called `name`, whatever made it, as the matching class: Lock/RLock,
    Semaphore/BoundedSemaphore, Event, Condition, Barrier, Queue/JoinableQueue,
    SharedMemory (a block), CValue (a C int64 Value). A pipe: use Connection(name, end)."""
    kind = _shmkit.info(name)
    k, flags = kind["kind"], kind["flags"]
    if k == "lock":
        return (RLock if flags & 0x1 else Lock).attach(name)
    if k == "sem":
        return (BoundedSemaphore if flags & 0x2 else Semaphore).attach(name)
    if k == "event":
        return Event.attach(name)
    if k == "cond":
        return Condition.attach(name)
    if k == "barrier":
        return Barrier.attach(name)
    if k == "queue":
        return (JoinableQueue if flags & 0x4 else Queue).attach(name)
    if k == "block":
        return SharedMemory(name)
    if k == "value":
        return CValue(name, False)
    raise WrongKindError("%s is a %s: attach() has no class for it" % (name, k))
