"""Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier.

A lock whose holder died holding it is handed to the next acquirer with a warning,
shmkit.OwnerDiedWarning (a RuntimeWarning), and its ``owner_died`` attribute is True until
the next acquire: the data it protects may be half-updated. ``warnings.simplefilter("error",
OwnerDiedWarning)`` turns that into an exception; the lock is then released before the
exception propagates, so nobody is left holding it unknowingly.

An untimed lock acquisition that can never succeed raises shmkit.DeadlockError (a
RuntimeError): a thread acquiring a Lock it already holds (multiprocessing would hang), or a
cycle of lock holders waiting on each other. A timed one, acquire(True, timeout), keeps
multiprocessing's contract whatever it detects: it goes on trying (the cycle may break when
another party gives up) and returns False once the timeout has passed.
"""
import threading
import time

from . import _shmkit
from ._base import Named
from .context import check_ctx

DeadlockError = _shmkit.DeadlockError
OwnerDiedWarning = _shmkit.OwnerDiedWarning


def _kind_check(name, *kinds):
    kind = _shmkit.info(name)["kind"]
    if kind not in kinds:
        raise _shmkit.WrongKindError("%s is a %s, not a %s" % (name, kind, " or ".join(kinds)))


class Lock(Named, _shmkit.Lock):
    """multiprocessing.Lock: acquire(block=True, timeout=None), release(), context manager.

    acquire() returns True, or False when block is False and the lock is taken, or when the
    timeout passed (also when it saw a deadlock meanwhile); acquire() without a timeout raises
    DeadlockError where it could never return (this thread holds the Lock, or a cycle)."""

    _tag = "lock"
    _recursive = False

    def __init__(self, *, ctx=None, name=None, mode=0o600):
        check_ctx(ctx)
        _shmkit.Lock.__init__(self, self._new_name(name), True, self._recursive, mode)

    def _open(self, name):
        _kind_check(name, "lock")
        _shmkit.Lock.__init__(self, name, False)

    def __repr__(self):
        return "<shmkit.%s %s holder=%d>" % (type(self).__name__, self._name, self.holder)


class RLock(Lock):
    """multiprocessing.RLock: the holder may acquire again; release as often."""

    _tag = "rlock"
    _recursive = True


class _OwnedLock(_shmkit.Lock):
    """The lock of a Value, Array, SharedMemory block or Condition (get_lock()); it pickles
    as its owner's lock."""

    def __reduce__(self):
        return (_owned_lock_of, (self._owner,))

    def __repr__(self):
        return "<shmkit lock of %r holder=%d>" % (self._owner, self.holder)


def _owned_lock_of(owner):
    return owner.get_lock()


_shmkit._set_owned_lock_type(_OwnedLock)


class Semaphore(Named, _shmkit.Semaphore):
    """multiprocessing.Semaphore(value=1)."""

    _tag = "sem"
    _bounded = False

    def __init__(self, value=1, *, ctx=None, name=None, mode=0o600):
        check_ctx(ctx)
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        _shmkit.Semaphore.__init__(self, self._new_name(name), True, value, self._bounded,
                                   mode)

    def _open(self, name):
        _kind_check(name, "sem")
        _shmkit.Semaphore.__init__(self, name, False)

    def __repr__(self):
        return "<shmkit.%s %s value=%d>" % (type(self).__name__, self._name, self.get_value())


class BoundedSemaphore(Semaphore):
    """multiprocessing.BoundedSemaphore: release() beyond the initial value is ValueError."""

    _tag = "bsem"
    _bounded = True


class Event(Named, _shmkit.Event):
    """multiprocessing.Event: set(), clear(), is_set(), wait(timeout=None) -> bool."""

    _tag = "event"

    def __init__(self, *, ctx=None, name=None, mode=0o600):
        check_ctx(ctx)
        _shmkit.Event.__init__(self, self._new_name(name), True, mode)

    def _open(self, name):
        _kind_check(name, "event")
        _shmkit.Event.__init__(self, name, False)


class Condition(Named, _shmkit.Condition):
    """multiprocessing.Condition with its own RLock (lock=None only: the lock lives in the
    condition's region). wait(timeout=None) -> bool, wait_for(predicate, timeout=None),
    notify(n=1), notify_all(); acquire/release/with as the lock's."""

    _tag = "cond"

    def __init__(self, lock=None, *, ctx=None, name=None, mode=0o600):
        check_ctx(ctx)
        if lock is not None:
            raise TypeError("shmkit.Condition uses its own RLock, kept in the condition's "
                            "shared region: pass lock=None and use cond.get_lock()")
        _shmkit.Condition.__init__(self, self._new_name(name), True, mode)

    def _open(self, name):
        _kind_check(name, "cond")
        _shmkit.Condition.__init__(self, name, False)

    def wait_for(self, predicate, timeout=None):
        result = predicate()
        if result:
            return result
        deadline = None if timeout is None else time.monotonic() + timeout
        while not result:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.wait(left)
            else:
                self.wait()
            result = predicate()
        return result


class Barrier(Named, _shmkit.Barrier):
    """threading/multiprocessing Barrier(parties, action=None, timeout=None).

    wait(timeout=None) returns a distinct index 0..parties-1; a broken barrier (a party timed
    out, died, or called abort/reset while others waited) raises threading.BrokenBarrierError.
    With an action, the last party to arrive runs it before anyone is released (a second
    rendezvous); an action that raises breaks the barrier. A wait without a timeout is not
    interrupted by Ctrl-C (a sliced wait would break the barrier for everyone); give a timeout
    when that matters.
    """

    _tag = "barrier"

    def __init__(self, parties, action=None, timeout=None, *, ctx=None, name=None, mode=0o600):
        check_ctx(ctx)
        if parties < 1:
            raise ValueError("parties must be >= 1")
        _shmkit.Barrier.__init__(self, self._new_name(name), True, parties, mode)
        self._action = action
        self._timeout = timeout

    @classmethod
    def attach(cls, name, action=None, timeout=None):
        obj = super().attach(name)
        obj._action = action
        obj._timeout = timeout
        return obj

    def _open(self, name):
        _kind_check(name, "barrier")
        _shmkit.Barrier.__init__(self, name, False)

    def _reduce_args(self):
        return (self._action, self._timeout)

    def wait(self, timeout=None):
        if timeout is None:
            timeout = self._timeout
        index = self._wait(timeout)
        if self._action is not None:
            if index == self.parties - 1:
                try:
                    self._action()
                except BaseException:
                    self.abort()
                    raise
            self._wait(timeout)  # everyone waits for the action
        return index

    def __repr__(self):
        return "<shmkit.Barrier %s waiters=%d/%d%s>" % (
            self._name, self.n_waiting, self.parties, " broken" if self.broken else "")


BrokenBarrierError = threading.BrokenBarrierError
