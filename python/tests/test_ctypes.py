"""Value, Array, RawValue, RawArray for every typecode, and SharedMemory."""
import ctypes
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
