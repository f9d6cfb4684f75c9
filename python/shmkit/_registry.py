"""Names for objects made without one, and what happens to them when a program ends.

An object made without a name gets "/shmkit-py-<pid>-<n>-<tag>-<random>" and belongs to the
process that made it: that process unlinks the name when it ends normally (after
multiprocessing has joined its children, so a child still starting can open it). Other
processes, fork children included, never unlink it. Objects given a name are the caller's to
unlink. Queues are closed at exit too, so that the writers this process attached leave and
EOF can arrive.
"""
import os
import secrets
import threading
import weakref
from itertools import count
from multiprocessing import util

from . import _shmkit

PREFIX = "/shmkit-py-"

_lock = threading.Lock()
_seq = count()
_owned = {}  # name -> pid of the process that must unlink it
_closers = weakref.WeakSet()  # objects whose close() runs at exit


def new_name(tag):
    return "%s%d-%d-%s-%s" % (PREFIX, os.getpid(), next(_seq), tag, secrets.token_hex(3))


def own(name):
    with _lock:
        _owned[name] = os.getpid()


def disown(name):
    with _lock:
        _owned.pop(name, None)


def close_at_exit(obj):
    _closers.add(obj)


def check_name(name):
    if not isinstance(name, str) or not _shmkit.name_ok(name):
        raise ValueError("bad name %r: want '/' then 1..%d of A-Z a-z 0-9 . _ - (not /sem.*)"
                         % (name, _shmkit.NAME_MAX))
    return name


def cleanup():
    pid = os.getpid()
    for obj in list(_closers):
        try:
            obj.close()
        except Exception:
            pass
    with _lock:
        mine = [n for n, p in _owned.items() if p == pid]
        for n in mine:
            del _owned[n]
    for n in mine:
        try:
            _shmkit.remove(n)
        except OSError:
            pass


class _Anchor:
    """Something for multiprocessing.util.register_after_fork to hold on to."""


_anchor = _Anchor()


def _install(_=None):
    # Negative priority: multiprocessing runs it after joining the children at exit.
    util.Finalize(None, cleanup, exitpriority=-100)


_install()
# A child started by multiprocessing clears the finalizers it inherited or made while
# unpickling, then runs the after-fork hooks: install again there.
util.register_after_fork(_anchor, _install)
