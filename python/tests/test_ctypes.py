"""Value, Array, RawValue, RawArray for every typecode, and SharedMemory."""
import ctypes
import multiprocessing
import os
import pickle
import time

import pytest

import helpers
import shmkit

SAMPLES = {"c": b"x", "u": "y", "b": -5, "B": 250, "h": -300, "H": 60000, "i": -70000,
           "I": 4000000000, "l": -(2 ** 40), "L": 2 ** 40, "q": -(2 ** 62), "Q": 2 ** 63,
           "f": 1.5, "d": 2.25}


@pytest.mark.parametrize("tc", sorted(SAMPLES))
def test_every_typecode(tc):
    x = SAMPLES[tc]
    v = shmkit.Value(tc, x)
    assert v.value == x
    rv = shmkit.RawValue(tc, x)
    assert rv.value == x
    again = pickle.loads(pickle.dumps(v))
    again.value = x
    assert v.value == x
    arr = shmkit.Array(tc, 3)
    arr[1] = x
    assert arr[1] == x and len(arr) == 3
    raw = shmkit.RawArray(tc, [x, x])
    assert raw[0] == x and raw[1] == x
    assert pickle.loads(pickle.dumps(raw))[1] == x


def test_value_api():
    v = shmkit.Value("i", 7)
    assert isinstance(v.get_obj(), ctypes.c_int)
    with v:
        v.value += 1
    assert v.get_lock().acquire() and v.value == 8
    v.get_lock().release()
    plain = shmkit.Value("d", lock=False)
    assert isinstance(plain, ctypes.c_double) and plain.value == 0.0
    mine = shmkit.RLock()
    v2 = shmkit.Value("i", 1, lock=mine)
    assert v2.get_lock() is mine
    with pytest.raises(AttributeError):
        shmkit.Value("i", lock="nope")


# Values that ctypes' setters take modulo 2**bits, or refuse, or convert.
TRICKY = [0, 1, -1, 127, 128, 255, 256, -129, 2 ** 15, 2 ** 31, -(2 ** 31) - 1, 2 ** 32 + 7,
          2 ** 63, -(2 ** 63) - 1, 2 ** 64 + 3, 2 ** 70 + 5, -(2 ** 70), True, 1.5, -2.75, 1e300,
          float("inf"), 3 + 0j, "7", None, b"x"]


def _ctypes_outcome(t, x):
    ref = t()
    try:
        ref.value = x
    except Exception as e:
        return type(e)
    return ref.value


@pytest.mark.parametrize("tc", sorted("bBhHiIlLqQfd"))
def test_value_property_is_ctypes(tc):
    """Value.value is read and written in C for these codes: every value gives what a ctypes
    object of the type gives (the same wrap-around, conversion or exception)."""
    t = multiprocessing_type(tc)
    v = shmkit.Value(tc)
    for x in TRICKY:
        expected = _ctypes_outcome(t, x)
        if isinstance(expected, type):
            with pytest.raises(expected):
                v.value = x
            assert not v.get_lock().holder  # the lock was left
        else:
            v.value = x
            got = v.value
            assert got == expected and type(got) is type(expected), (tc, x)


def multiprocessing_type(tc):
    from multiprocessing.sharedctypes import typecode_to_type
    return typecode_to_type[tc]


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int), ("b", ctypes.c_double)]


def test_value_of_other_ctypes_types():
    """Types without a C cell reader (c_char, c_bool, aliases resolve to theirs, Structures)
    go through the ctypes object, under the lock all the same."""
    c = shmkit.Value("c", b"a")
    c.value = b"z"
    assert c.value == b"z"
    with pytest.raises(TypeError):
        c.value = 5.5
    flag = shmkit.Value(ctypes.c_bool, True)
    assert flag.value is True
    flag.value = 0
    assert flag.value is False
    n = shmkit.Value(ctypes.c_int64, 5)  # an alias of c_long: read in C
    n.value += 2 ** 64 + 1
    assert n.value == 6
    p = shmkit.Value(Pair, 1, 2.5)
    assert p.get_obj().a == 1 and p.get_obj().b == 2.5
    with pytest.raises(AttributeError):
        p.value
    with pytest.raises(AttributeError):
        del n.value


def test_value_with_foreign_locks():
    """lock= any shmkit lock, or any object with acquire/release and the context manager
    protocol (a threading.RLock here): `value` holds it around each access."""
    import threading
    for lock in (shmkit.Lock(), shmkit.RLock(), threading.RLock()):
        v = shmkit.Value("q", 1, lock=lock)
        assert v.get_lock() is lock
        with v:  # the Value's own context manager takes the same lock
            assert v.get_obj().value == 1
        v.value += 41
        assert v.value == 42
    lock = shmkit.Lock()
    v = shmkit.Value("i", 3, lock=lock)
    with lock:  # a Lock, not an RLock: value would deadlock, and says so
        with pytest.raises(shmkit.DeadlockError):
            v.value
    assert v.value == 3


def test_value_waits_for_the_lock():
    """Reading value while another thread holds the lock waits until it is released."""
    import threading
    v = shmkit.Value("q", 0)
    lock = v.get_lock()
    lock.acquire()
    seen = []
    t = threading.Thread(target=lambda: seen.append(v.value))
    t.start()
    t.join(0.3)
    assert seen == []  # still waiting: the lock is held
    v.value = 99  # the holder may (RLock)
    lock.release()
    t.join(60)
    assert seen == [99]


def test_value_under_its_lock_and_after_it():
    """Inside `with v.get_lock():` value does not take the RLock again (this thread holds it);
    a lock released through another handle is not mistaken for one still held: value waits
    for the process that holds it now."""
    v = shmkit.Value("q", 5)
    lock = v.get_lock()
    with lock:
        v.value += 1
        with lock:
            v.value += 1
        v.value += 1
    assert v.value == 8 and lock.holder == 0
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    other = shmkit._shmkit.Block.get_lock(v)  # the same lock through another object
    assert other is not lock
    lock.acquire()
    other.release()  # the lock is free, though `lock` took it last
    assert lock.holder == 0
    ready = ctx.Event()
    p = ctx.Process(target=helpers.hold_then_set, args=(v, ready, 0.5, 77))
    p.start()
    assert ready.wait(60)
    assert v.value == 77  # waited for the child's release, did not read under its feet
    p.join(60)
    assert p.exitcode == 0 and lock.holder == 0


def test_value_in_a_child_forked_under_the_lock():
    """A child forked while its parent holds the Value's lock does not hold it: its value
    waits for the parent's release."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    v = shmkit.Value("q", 1)
    out = ctx.Queue()
    with v.get_lock():
        v.value = 2  # the parent's own access, under its lock
        p = ctx.Process(target=helpers.read_value, args=(v, out))
        p.start()
        time.sleep(0.5)
        v.get_obj().value = 9
    assert out.get(timeout=60) == 9
    p.join(60)
    assert p.exitcode == 0


def test_array_slices_and_strings():
    a = shmkit.Array("i", range(10))
    assert a[2:5] == [2, 3, 4] and a[:] == list(range(10))
    a[0:3] = [9, 9, 9]
    assert a[:4] == [9, 9, 9, 3]
    s = shmkit.Array("c", b"hello")
    assert s.value == b"hello" and s.raw == b"hello"
    s.value = b"hi"
    assert s.value == b"hi"


def test_buffer_protocol_shares_memory():
    np = pytest.importorskip("numpy")
    a = shmkit.Array("d", 4)
    view = np.frombuffer(a, dtype=np.float64)
    view[2] = 3.5
    assert a[2] == 3.5
    m = memoryview(a)
    assert m.format == "d" and m.itemsize == 8 and m.shape == (4,)
    a[0] = 1.25
    assert m[0] == 1.25
    raw = shmkit.RawArray("i", 3)
    np.frombuffer(raw, dtype=np.int32)[1] = 77
    assert raw[1] == 77


def test_children_see_the_cells(ctx):
    a = shmkit.Array("i", 16)
    r = shmkit.RawArray("h", 8)
    ps = [ctx.Process(target=helpers.array_fill, args=(a, 5)),
          ctx.Process(target=helpers.raw_fill, args=(r, -3))]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    assert a[:] == [5] * 16 and list(r) == [-3] * 8


def test_locked_increments_are_exact(ctx):
    v = shmkit.Value("q", 0)
    ps = [ctx.Process(target=helpers.add_locked, args=(v, 5000)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(120)
        assert p.exitcode == 0
    assert v.value == 10000


def test_shared_memory(ctx, uname):
    shm = shmkit.SharedMemory(create=True, size=100)
    assert shm.size == 100 and len(shm.buf) == 100
    p = ctx.Process(target=helpers.shm_write, args=(shm.name, b"hello"))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert bytes(shm.buf[:5]) == b"hello"
    other = shmkit.SharedMemory(shm.name)  # attaching never unlinks later
    other.close()
    assert bytes(shm.buf[:5]) == b"hello"
    name = uname("shm")
    named = shmkit.SharedMemory(name[1:], create=True, size=8)
    with pytest.raises(FileExistsError):
        shmkit.SharedMemory(name, create=True, size=8)
    m = named.buf
    named.close()
    with pytest.raises(ValueError):
        m[0]  # released by close
    named.unlink()
    with pytest.raises(FileNotFoundError):
        shmkit.SharedMemory(name)
    with pytest.raises(ValueError):
        shmkit.SharedMemory(create=True, size=0)
    q = shmkit.Queue()
    with pytest.raises(shmkit.WrongKindError):
        shmkit.SharedMemory(q.name)


def test_block_close_with_exports():
    shm = shmkit.SharedMemory(create=True, size=8)
    extra = shm.buf[2:4]
    with pytest.raises(BufferError):
        shm.close()
    extra.release()
    shm.close()


# ---- multiprocessing's sharedctypes and context API (issue 18) ------------------------------

def test_lock_none_is_a_new_rlock():
    """lock=None means the default (a new RLock) as in multiprocessing; lock=False is raw."""
    for obj in (shmkit.Value("i", 5, lock=None), shmkit.Array("i", [1, 2], lock=None)):
        assert isinstance(obj, (shmkit.Synchronized, shmkit.SynchronizedArray))
        lock = obj.get_lock()
        with lock:
            assert lock.acquire(False) is True  # recursive
            lock.release()
    assert shmkit.Value("i", 5, lock=None).value == 5
    raw = shmkit.Value("i", 5, lock=False)
    assert not hasattr(raw, "get_lock") and raw.value == 5


def test_synchronized_and_copy():
    from shmkit import sharedctypes

    raw = shmkit.RawArray("i", [1, 2, 3])
    s = sharedctypes.synchronized(raw)
    assert isinstance(s, shmkit.SynchronizedArray)
    s[0] = 10
    assert raw[0] == 10  # the same shared cells
    with s.get_lock():
        assert s[:] == [10, 2, 3]
    v = sharedctypes.synchronized(shmkit.RawValue("d", 1.5), shmkit.Lock())
    assert isinstance(v, shmkit.Synchronized) and v.value == 1.5
    local = sharedctypes.synchronized(ctypes.c_int(7))  # not shared: multiprocessing's wrapper
    assert local.value == 7 and hasattr(local.get_lock(), "acquire")
    c = sharedctypes.copy(raw)
    assert list(c) == [10, 2, 3]
    c[1] = 20
    assert raw[1] == 2  # a copy, in a block of its own
    assert list(pickle.loads(pickle.dumps(c))) == [10, 20, 3]
    cv = sharedctypes.copy(ctypes.c_double(2.5))
    assert cv.value == 2.5


def _bump(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_get_context(method):
    ctx = shmkit.get_context(method)
    assert ctx.get_start_method() == method
    assert shmkit.get_context(method) is ctx
    assert isinstance(ctx.Lock(), shmkit.Lock) and isinstance(ctx.RLock(), shmkit.RLock)
    assert isinstance(ctx.Queue(), shmkit.Queue)
    assert isinstance(ctx.Event(), shmkit.Event)
    assert isinstance(ctx.Pipe()[0], shmkit.Connection)
    v = ctx.Value("q", 0)
    assert isinstance(v, shmkit.Synchronized)
    p = ctx.Process(target=_bump, args=(v, 100))
    assert type(p) is type(multiprocessing.get_context(method).Process())
    p.start()
    p.join(60)
    assert p.exitcode == 0 and v.value == 100
    assert ctx.cpu_count() >= 1
    with pytest.raises(ValueError):
        shmkit.get_context("nonesuch")


def test_ctx_is_never_ignored():
    for make in (lambda c: shmkit.Lock(ctx=c), lambda c: shmkit.Queue(ctx=c),
                 lambda c: shmkit.Value("i", 0, ctx=c), lambda c: shmkit.Barrier(2, ctx=c),
                 lambda c: shmkit.Array("i", 2, ctx=c), lambda c: shmkit.Event(ctx=c)):
        with pytest.raises(TypeError):
            make(123)
        make(shmkit.get_context())
        make(multiprocessing.get_context())
    # A multiprocessing context makes the lock as multiprocessing would.
    v = shmkit.Value("i", 0, ctx=multiprocessing.get_context("spawn"))
    assert type(v.get_lock()).__module__ == "multiprocessing.synchronize"


def test_buffer_too_short_at_top_level():
    assert shmkit.BufferTooShort is multiprocessing.BufferTooShort
    a, b = shmkit.Pipe()
    a.send_bytes(b"toolong")
    with pytest.raises(shmkit.BufferTooShort) as ei:
        b.recv_bytes_into(bytearray(3))
    assert ei.value.args[0] == b"toolong"
