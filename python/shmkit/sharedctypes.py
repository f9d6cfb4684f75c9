"""Value, Array, RawValue and RawArray in shmkit blocks.

Each object is one block (a shared region of bytes with its own recursive Lock) holding a
ctypes object of the type multiprocessing would use (every typecode of
multiprocessing.sharedctypes.typecode_to_type, or a ctypes type). RawValue/RawArray return the
ctypes object itself (it supports the buffer protocol); Value/Array wrap it with a lock as
multiprocessing does (get_lock(), get_obj(), .value, indexing, slicing, len), and the wrapper
*is* the block, so memoryview(arr) and numpy.frombuffer(arr, dtype) see the shared cells
without copying. lock=True or None uses the block's own RLock (multiprocessing makes a new
RLock for both), or ctx.RLock() when ctx is a multiprocessing context; a lock object of this
package (or anything with acquire/release) may be passed instead; lock=False returns the raw
object. synchronized(obj, lock=None) and copy(obj) are multiprocessing.sharedctypes'.
All of them pickle by name, so children under fork, spawn and forkserver share them.
A Value's .value is read and written in C (_shmkit.SyncValue) under its lock, with ctypes'
own conversions; inside `with v.get_lock():` it does not take the RLock a second time.
"""
import ctypes
import multiprocessing.sharedctypes
from multiprocessing.sharedctypes import typecode_to_type

from . import _registry, _shmkit
from .context import ShmkitContext, check_ctx

_FORMATS = {"c": ("c", 1), "u": ("u", ctypes.sizeof(ctypes.c_wchar)), "b": ("b", 1),
            "B": ("B", 1), "h": ("h", 2), "H": ("H", 2), "i": ("i", 4), "I": ("I", 4),
            "l": ("l", ctypes.sizeof(ctypes.c_long)), "L": ("L", ctypes.sizeof(ctypes.c_ulong)),
            "q": ("q", 8), "Q": ("Q", 8), "f": ("f", 4), "d": ("d", 8)}


def _ctype(typecode_or_type):
    return typecode_to_type.get(typecode_or_type, typecode_or_type)


def _block(name, size):
    if name is None:
        name = _registry.new_name("ctypes")
        _registry.own(name)
    else:
        _registry.check_name(name)
    return name, _shmkit.Block(name, True, size)


def _open_block(name, cls=_shmkit.Block):
    kind = _shmkit.info(name)["kind"]
    if kind != "block":
        raise _shmkit.WrongKindError("%s is a %s, not a block" % (name, kind))
    obj = cls.__new__(cls)
    _shmkit.Block.__init__(obj, name, False)
    return obj


# ctypes subclasses whose instances pickle by their block's name.
_shared_types = {}


def _shared_type(t):
    st = _shared_types.get(t)
    if st is None:
        st = type(t.__name__, (t,), {"__reduce__": _reduce_raw, "__module__": __name__})
        _shared_types[t] = st
    return st


def _reduce_raw(obj):
    return (_rebuild_raw, (_registry.sent(obj._shmkit_name), obj._shmkit_spec))


def _raw_on(block, name, spec):
    typecode_or_type, length = spec
    t = _ctype(typecode_or_type)
    if length is not None:
        t = t * length
    obj = _shared_type(t).from_buffer(block)
    obj._shmkit_name = name
    obj._shmkit_spec = spec
    obj._shmkit_block = block
    return obj


def _rebuild_raw(name, spec):
    return _raw_on(_open_block(name), name, spec)


def RawValue(typecode_or_type, *args, name=None):
    t = _ctype(typecode_or_type)
    name, block = _block(name, ctypes.sizeof(t))
    obj = _raw_on(block, name, (typecode_or_type, None))
    if args:
        obj.__init__(*args)
    return obj


def _array_init(size_or_initializer):
    if isinstance(size_or_initializer, int):
        return size_or_initializer, None
    init = list(size_or_initializer) if not isinstance(size_or_initializer, (bytes, str)) \
        else size_or_initializer
    return len(init), init


def RawArray(typecode_or_type, size_or_initializer, *, name=None):
    t = _ctype(typecode_or_type)
    length, init = _array_init(size_or_initializer)
    name, block = _block(name, ctypes.sizeof(t) * length)
    obj = _raw_on(block, name, (typecode_or_type, length))
    if init is not None:
        obj.__init__(*init)
    return obj


class _Synchronized(_shmkit.Block):
    """A block, its ctypes object and the lock that guards it."""

    def _setup(self, name, spec, lock):
        typecode_or_type, length = spec
        fmt = _FORMATS.get(typecode_or_type) if isinstance(typecode_or_type, str) else None
        if fmt:
            self._set_format(*fmt)
        self._name = name
        self._spec = spec
        t = _ctype(typecode_or_type)
        self._obj = (t * length if length is not None else t).from_buffer(self)
        self._lock = _shmkit.Block.get_lock(self) if lock is True else lock
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    @property
    def name(self):
        return self._name

    def __reduce__(self):
        lock = True if getattr(self._lock, "_owner", None) is self else self._lock
        return (_rebuild_sync, (type(self), _registry.sent(self._name), self._spec, lock))

    def get_obj(self):
        return self._obj

    def get_lock(self):
        return self._lock

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def unlink(self):
        _registry.disown(self._name)
        _shmkit.remove(self._name)

    def __repr__(self):
        return "<%s wrapper for %r>" % (type(self).__name__, self._obj)


def _rebuild_sync(cls, name, spec, lock):
    obj = _open_block(name, cls)
    obj._setup(name, spec, lock)
    return obj


# ctypes' own simple types whose cells _shmkit.SyncValue reads and writes itself (by their
# _type_ code); any other type (c_char, c_bool, a Structure, a subclass) goes through ctypes.
_C_CELL_TYPES = {getattr(ctypes, n) for n in (
    "c_byte", "c_ubyte", "c_short", "c_ushort", "c_int", "c_uint", "c_long", "c_ulong",
    "c_longlong", "c_ulonglong", "c_float", "c_double")}


class Synchronized(_Synchronized, _shmkit.SyncValue):
    """.value is SyncValue's: read and written in C under the lock, as multiprocessing's
    property does in Python (`with self._lock: return self._obj.value`)."""

    def _setup(self, name, spec, lock):
        _Synchronized._setup(self, name, spec, lock)
        t = _ctype(spec[0])
        self._set_value(t._type_ if t in _C_CELL_TYPES else "", self._lock)


class SynchronizedArray(_Synchronized):
    def __len__(self):
        return len(self._obj)

    def __getitem__(self, i):
        with self._lock:
            return self._obj[i]

    def __setitem__(self, i, value):
        with self._lock:
            self._obj[i] = value

    def __getslice__(self, start, stop):
        with self._lock:
            return self._obj[start:stop]

    def __setslice__(self, start, stop, values):
        with self._lock:
            self._obj[start:stop] = values


class SynchronizedString(SynchronizedArray):
    @property
    def value(self):
        with self._lock:
            return self._obj.value

    @value.setter
    def value(self, v):
        with self._lock:
            self._obj.value = v

    @property
    def raw(self):
        with self._lock:
            return self._obj.raw

    @raw.setter
    def raw(self, v):
        with self._lock:
            self._obj.raw = v


def _check_lock(lock, ctx):
    """lock as multiprocessing takes it: False (raw), True or None (a new RLock: the block's
    own, or ctx.RLock() for a multiprocessing context), or an object with acquire()."""
    check_ctx(ctx)
    if lock is None:
        lock = True
    if lock is True and ctx is not None and not isinstance(ctx, ShmkitContext):
        lock = ctx.RLock()
    if lock is True or lock is False:
        return lock
    if not hasattr(lock, "acquire"):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return lock


def Value(typecode_or_type, *args, lock=True, ctx=None, name=None):
    """multiprocessing.Value: a synchronized wrapper, or the raw object with lock=False."""
    lock = _check_lock(lock, ctx)
    if lock is False:
        return RawValue(typecode_or_type, *args, name=name)
    t = _ctype(typecode_or_type)
    name, _ = _block_name(name)
    obj = Synchronized.__new__(Synchronized)
    _shmkit.Block.__init__(obj, name, True, ctypes.sizeof(t))
    obj._setup(name, (typecode_or_type, None), lock)
    if args:
        obj._obj.__init__(*args)
    return obj


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None, name=None):
    """multiprocessing.Array: a synchronized wrapper, or the raw array with lock=False."""
    lock = _check_lock(lock, ctx)
    if lock is False:
        return RawArray(typecode_or_type, size_or_initializer, name=name)
    t = _ctype(typecode_or_type)
    length, init = _array_init(size_or_initializer)
    cls = SynchronizedString if t is ctypes.c_char else SynchronizedArray
    name, _ = _block_name(name)
    obj = cls.__new__(cls)
    _shmkit.Block.__init__(obj, name, True, ctypes.sizeof(t) * length)
    obj._setup(name, (typecode_or_type, length), lock)
    if init is not None:
        obj._obj.__init__(*init)
    return obj


def synchronized(obj, lock=None, ctx=None):
    """multiprocessing.sharedctypes.synchronized: obj wrapped with a lock (lock=None: a new
    RLock, the block's own). A RawValue/RawArray of this package gives this package's
    Synchronized/SynchronizedArray/SynchronizedString over the same shared cells; any other
    ctypes object gets multiprocessing's wrapper with this package's lock."""
    if lock is False:
        raise ValueError("synchronized() needs a lock: lock=False is the raw object itself")
    lock = _check_lock(lock, ctx)
    name = getattr(obj, "_shmkit_name", None)
    if name is None:
        if lock is True:
            from .synchronize import RLock
            lock = RLock()
        return multiprocessing.sharedctypes.synchronized(obj, lock)
    spec = obj._shmkit_spec
    t = _ctype(spec[0])
    if spec[1] is None:
        cls = Synchronized
    else:
        cls = SynchronizedString if t is ctypes.c_char else SynchronizedArray
    return _rebuild_sync(cls, name, spec, lock)


def copy(obj):
    """multiprocessing.sharedctypes.copy: a new shared raw object holding a copy of obj (a
    ctypes object, shared or not)."""
    spec = getattr(obj, "_shmkit_spec", None)
    if spec is None:
        t = type(obj)
        spec = (t._type_, t._length_) if issubclass(t, ctypes.Array) else (t, None)
    size = ctypes.sizeof(obj)
    name, block = _block(None, size)
    new = _raw_on(block, name, spec)
    ctypes.memmove(ctypes.addressof(new), ctypes.addressof(obj), size)
    return new


def _block_name(name):
    if name is None:
        name = _registry.new_name("ctypes")
        _registry.own(name)
    else:
        _registry.check_name(name)
    return name, None
