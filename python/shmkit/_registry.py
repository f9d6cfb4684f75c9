"""Names for objects made without one, and how they go away (the design: _tracker.py).

An object made without a name gets "/shmkit-py-<tid>-<pid>-<n>-<tag>-<random>", <tid> naming
this program's tracker, and is removed once nobody holds it any more (the kernel's word: every
open handle of any process, C and the tool included, holds it), at the latest moments after the
program's last process ended, however it ended. While the program runs, a name someone may still
open by name (read through `.name`, pickled other than to start a process, a SharedMemory block)
is pinned: kept until the program ends or unlink(). Objects given a name are the caller's to
unlink. Queues are closed at exit too, so that the writers this process attached leave and
EOF can arrive.
"""
import os
import secrets
import socket
import sys
import threading
import weakref
from itertools import count
from multiprocessing import util

from . import _shmkit, _tracker

PREFIX = "/shmkit-py-"

_lock = threading.RLock()
_seq = count()
_closers = weakref.WeakSet()  # type: weakref.WeakSet[object]  # objects close()d at exit
_conn = None       # our connection to the tracker (shared with fork children)
_tid = None        # the tracker's id, "00000000" when none could be had
_pinned = set()    # names this process has pinned already
_pending = []      # names whose last local object was dropped: looked at on the next create
_incoming = []     # descriptors holding objects a parent handed us at start (closed after)
_handed = []       # our copies of descriptors handed to children being started
NO_TRACKER = "0" * 8


def _connect(tid):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(_tracker.address(tid))
    except OSError:
        s.close()
        return None
    return s


def _start():
    """Start a tracker for this program and connect to it: (socket, tid), or (None, None)."""
    tid = secrets.token_hex(4)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(_tracker.address(tid))
        listener.listen(128)
        conn = _connect(tid)  # queued until the tracker accepts: it cannot miss us
        if conn is None:
            return None, None
        path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = ("import sys; sys.path.insert(0, %r); from shmkit._tracker import main; "
                "main(%d, %r)" % (path, listener.fileno(), tid))
        exe = sys.executable or "python3"
        util.spawnv_passfds(os.fsencode(exe), [exe, "-c", code], [listener.fileno()])
    except OSError:
        return None, None
    finally:
        listener.close()
    return conn, tid


def _ensure():
    """This program's tracker id, connecting (or starting one) on first need."""
    global _conn, _tid
    if _tid is not None:
        return _tid
    with _lock:
        if _tid is not None:
            return _tid
        conn = None
        tid = os.environ.get(_tracker.ENV, "")
        # A child multiprocessing started by spawn or forkserver joins its parent's tracker;
        # any other program that inherited the variable starts its own.
        if len(tid) == 8 and _started_by_multiprocessing():
            conn = _connect(tid)
        if conn is None:
            conn, tid = _start()
        if conn is None:
            tid = NO_TRACKER
        else:
            os.environ[_tracker.ENV] = tid
        _conn, _tid = conn, tid
        return tid


def _started_by_multiprocessing():
    try:
        import multiprocessing
        return multiprocessing.parent_process() is not None
    except Exception:
        return False


def _send(msg):
    conn = _conn
    if conn is None:
        return
    try:
        conn.send(msg.encode("ascii"))
    except OSError:
        pass


def new_name(tag):
    """A fresh anonymous name; dropped objects whose handles are closed by now go first."""
    _let_go_handed()
    _flush_pending()
    return "%s%s-%d-%d-%s-%s" % (PREFIX, _ensure(), os.getpid(), next(_seq), tag,
                                 secrets.token_hex(3))


def spill_name(owner):
    """The name of a block carrying one big message of queue or pipe `owner`: an anonymous
    owner's spills end in the owner's random part (the tracker removes them once no name of
    its own ends so); a named owner's outlive this program like the owner, for whoever reads
    them. Short either way: the name travels in a slot, which may be 64 bytes."""
    if owner.startswith(PREFIX):
        return "%s%s-%d-%d%s%s" % (PREFIX, _ensure(), os.getpid(), next(_seq), _tracker.SPILL,
                                   owner.rsplit("-", 1)[1])
    return "%sspill-%d-%d-%s" % (PREFIX, os.getpid(), next(_seq), secrets.token_hex(3))


def anonymous(name):
    return isinstance(name, str) and name.lstrip("/").startswith(PREFIX[1:])


def own(name, *objs):
    """`name` was made here without a name by the user: when each of objs is dropped, try to
    remove it (it goes if nobody else holds it)."""
    for obj in objs:
        weakref.finalize(obj, _dropped, name).atexit = False


def _dropped(name):
    # The object's handle closes just after this (its C part is freed after its finalizers):
    # the next create here, or the tracker a moment later, removes the name if nobody holds it.
    _let_go_handed()
    _pending.append(name)
    _send("drop " + name)


def _flush_pending():
    while _pending:
        try:
            name = _pending.pop()
        except IndexError:
            break
        try:
            _shmkit.remove_unused(name)
        except OSError:
            pass


def pin(name):
    """Keep anonymous `name` until the program ends (or unlink()), held or not."""
    if not anonymous(name) or name in _pinned:
        return
    name = "/" + name.lstrip("/")
    _pinned.add(name)
    _send("pin " + name)


def disown(name):
    _pinned.discard(name)


def close_at_exit(obj):
    _closers.add(obj)


def check_name(name):
    if not isinstance(name, str) or not _shmkit.name_ok(name):
        raise ValueError("bad name %r: want '/' then 1..%d of A-Z a-z 0-9 . _ - (not /sem.*)"
                         % (name, _shmkit.NAME_MAX))
    return name


# ---- pickling a name -------------------------------------------------------------------------

class _Sent(str):
    """A name on its way into a pickle (sent(name)): what it pickles as depends on where to."""

    def __reduce__(self):
        name = str(self)
        from multiprocessing import context, reduction
        popen = context.get_spawning_popen()
        if popen is None:
            # Into a queue, a pipe, a file: whoever reads it opens it later by name.
            pin(name)
            return (str, (name,))
        # Into a child being started by spawn or forkserver, which may open it after we died:
        # hand it a descriptor holding the object (lib/hold.c); it lets go once it opened it.
        _let_go_handed()
        try:
            fd = _shmkit.hold_fd("/" + name.lstrip("/"))
        except OSError:
            return (str, (name,))
        handed = _Handed(popen, fd)
        _handed.append(handed)
        util.Finalize(popen, handed.close)
        return (_received, (name, reduction.DupFd(fd)))


class _Handed:
    """Our copy of a descriptor handed to a child being started: needed until the child has
    it (spawn passes it at exec, forkserver sends it before the child's pid is known), then
    closed at the next occasion (a create, a drop, a pickle here) or with the Popen object."""

    def __init__(self, popen, fd):
        self.popen = weakref.ref(popen)
        self.fd = fd

    def launched(self):
        popen = self.popen()
        return popen is None or getattr(popen, "pid", None) is not None

    def close(self):
        fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def _let_go_handed():
    if not _handed:
        return
    for h in [h for h in _handed if h.launched()]:
        h.close()
        try:
            _handed.remove(h)
        except ValueError:
            pass


def sent(name):
    """What __reduce__ should put in a pickle for the object called `name`."""
    return _Sent(name) if anonymous(name) else name


def _received(name, dupfd):
    try:
        _incoming.append(dupfd.detach())
    except Exception:
        pass
    return name


def _let_go_incoming():
    # After the child's objects were unpickled (and so opened): they hold themselves now.
    while _incoming:
        try:
            os.close(_incoming.pop())
        except OSError:
            pass


# ---- exit and fork ---------------------------------------------------------------------------

def cleanup():
    _let_go_handed()
    for obj in list(_closers):
        try:
            obj.close()
        except Exception:
            pass
    _let_go_incoming()


class _Anchor:
    """Something for multiprocessing.util.register_after_fork to hold on to."""


_anchor = _Anchor()


def _install(_=None):
    # Negative priority: multiprocessing runs it after joining the children at exit.
    util.Finalize(None, cleanup, exitpriority=-100)
    _let_go_incoming()


def _after_fork_child():
    global _pending, _pinned
    _pending = []
    _pinned = set(_pinned)
    # The connection is shared with the parent: the tracker sees the program alive while
    # either lives. A spawn child has none and connects on first need.


_install()
# A child started by multiprocessing clears the finalizers it inherited or made while
# unpickling, then runs the after-fork hooks: install again there, and let go of what the
# parent handed us at start.
util.register_after_fork(_anchor, _install)
os.register_at_fork(after_in_child=_after_fork_child)
