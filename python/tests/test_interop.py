"""Python with C and the shmkit tool: stamped messages both ways, a Lock and a Value shared
with a C program, objects made by `shmkit create` attached by kind."""
import os
import pickle
import subprocess
import sys
import threading
import time
import warnings

import pytest

import shmkit
from shmkit import stamp


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kw)


def test_stamp_format_round_trip():
    m = stamp.make(7, 42, 64)
    assert len(m) == 64 and stamp.check(m) == (7, 42)
    bad = bytearray(m)
    bad[40] ^= 1
    with pytest.raises(ValueError):
        stamp.check(bytes(bad))


def test_python_producer_tool_consumer(tool, uname):
    name = uname("q")
    r = run(tool, "create", "queue", name, "--capacity", "64", "--max-size", "128")
    assert r.returncode == 0, r.stderr
    consumer = subprocess.Popen([tool, "consume", name, "--verify", "--json"],
                                stdout=subprocess.PIPE, text=True)
    q = shmkit.Queue.attach(name)
    for seq in range(2000):
        q.put_bytes(stamp.make(4242, seq, 24 + seq % 100))
    q.close()  # the last writer leaves: EOF for the consumer
    out, _ = consumer.communicate(timeout=120)
    assert consumer.returncode == 0, out
    assert '"received": 2000' in out.replace(" ", "").replace('"received":2000',
                                                               '"received": 2000')
    assert '"corrupt": 0' in out or '"corrupt":0' in out


def test_bytes_put_tool_consumer_sees_pickles(tool, uname):
    """put() of bytes skips the pickler, yet a C consumer gets exactly what pickle.dumps
    writes (each message is one line of `shmkit consume`'s output)."""
    name = uname("q")
    assert run(tool, "create", "queue", name, "--capacity", "8", "--max-size",
               "70000").returncode == 0
    q = shmkit.Queue.attach(name)
    sizes = (0, 1, 64, 255, 256, 1000, 65535, 65536, 66000)
    items = [bytes((i * 13 + n) & 0xFF for i in range(n)) for n in sizes]
    consumer = subprocess.Popen([tool, "consume", name, "--count", str(len(items))],
                                stdout=subprocess.PIPE)
    # Read while putting: the output (~200 KB) overflows a pipe(2)'s buffer, and a message
    # longer than the queue's slots streams through them only while the consumer takes.
    putter = threading.Thread(target=lambda: [q.put(b) for b in items])
    putter.start()
    out, _ = consumer.communicate(timeout=120)
    putter.join(timeout=120)
    assert not putter.is_alive()
    assert consumer.returncode == 0
    assert out == b"".join(pickle.dumps(b, protocol=5) + b"\n" for b in items)


def test_tool_producer_pickled_bytes_python_get(tool, uname):
    """A C producer's message that is the pickle of a bytes object comes out of get() as
    that bytes object (taken without the unpickler), one that is not raises NotAPickleError."""
    name = uname("q")
    assert run(tool, "create", "queue", name, "--capacity", "8", "--max-size",
               "512", "--writers", "1").returncode == 0
    q = shmkit.Queue.attach(name)
    items = [b"a" * 64, b"b" * 300]
    lines = b"".join(pickle.dumps(b, protocol=5) + b"\n" for b in items) + b"plain\n"
    assert b"\n" not in pickle.dumps(items[0], protocol=5)[:-1]  # one line each
    r = subprocess.run([tool, "produce", name], input=lines, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert q.get(timeout=60) == items[0]
    assert q.get(timeout=60) == items[1]
    with pytest.raises(shmkit.NotAPickleError):
        q.get(timeout=60)


def test_tool_producer_python_consumer(tool, uname):
    name = uname("q")
    assert run(tool, "create", "queue", name, "--capacity", "32", "--max-size", "256",
               "--writers", "1").returncode == 0
    q = shmkit.Queue.attach(name)
    producer = subprocess.Popen([tool, "produce", name, "--count", "3000", "--size", "100"])
    seen = []
    for msg in iter(lambda: _get(q), None):
        seen.append(stamp.check(msg))
    assert producer.wait(120) == 0
    assert len(seen) == 3000
    assert [s for _, s in seen] == list(range(3000))
    assert {p for p, _ in seen} == {producer.pid}


def _get(q):
    try:
        return q.get_bytes(timeout=60)
    except EOFError:
        return None


def test_c_and_python_share_lock_and_value(ctx, interop, uname):
    lname, vname = uname("lock"), uname("val")
    lock = shmkit.Lock(name=lname)
    v = shmkit.Value("q", 0, name=vname)
    from helpers import add_under
    p = ctx.Process(target=add_under, args=(lock, v, 3000))
    p.start()
    r = run(interop, "add", vname, lname, "3000")
    assert r.returncode == 0, r.stderr
    p.join(120)
    assert p.exitcode == 0
    assert v.value == 6000


def test_c_holder_killed(interop, uname):
    lname = uname("lock")
    lock = shmkit.Lock(name=lname)
    holder = subprocess.Popen([interop, "hold", lname], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert lock.acquire(timeout=0.1) is False
    holder.kill()
    holder.wait(60)
    with pytest.warns(shmkit.OwnerDiedWarning):
        assert lock.acquire(timeout=30)
    lock.release()


def test_attach_tool_objects(tool, uname):
    made = {"lock": [], "rlock": [], "sem": ["--init", "2", "--bounded"], "event": [],
            "cond": [], "barrier": ["--parties", "1"], "value": ["--init", "5"],
            "block": ["--size", "16"], "queue": ["--capacity", "2", "--max-size", "8",
                                                 "--joinable"]}
    expect = {"lock": shmkit.Lock, "rlock": shmkit.RLock, "sem": shmkit.BoundedSemaphore,
              "event": shmkit.Event, "cond": shmkit.Condition, "barrier": shmkit.Barrier,
              "value": shmkit.CValue, "block": shmkit.SharedMemory,
              "queue": shmkit.JoinableQueue}
    names = {}
    for kind, opts in made.items():
        name = names[kind] = uname(kind)
        r = run(tool, "create", kind, name, *opts)
        assert r.returncode == 0, r.stderr
        obj = shmkit.attach(name)
        assert type(obj) is expect[kind], kind
    val = shmkit.attach(names["value"])
    assert val.value == 5
    with val.get_lock():
        val.value += 1
    assert "value:" in run(tool, "stat", names["value"]).stdout


def test_tool_sees_python_objects(tool):
    q = shmkit.Queue(16)
    q.put("x")
    r = run(tool, "stat", q.name, "--json")
    assert r.returncode == 0 and '"depth":1' in r.stdout.replace(" ", "")
    blk = shmkit.Value("d", 1.0)
    r = run(tool, "stat", blk.name)
    assert "block" in r.stdout


def test_program_leaves_nothing_behind(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(
        "import multiprocessing as mp, os, shmkit\n"
        "def child(q, v):\n"
        "    shmkit.Lock(); shmkit.Queue()\n"  # made in the child: gone when it ends
        "    q.put(os.getpid())\n"
        "    v.value = 3\n"
        "if __name__ == '__main__':\n"
        "    q, v = shmkit.Queue(), shmkit.Value('i')\n"
        "    objs = [shmkit.Lock(), shmkit.Pipe(), shmkit.Event(), shmkit.Barrier(2),\n"
        "            shmkit.Array('d', 3), shmkit.SharedMemory(create=True, size=5)]\n"
        "    for m in ('fork', 'spawn'):\n"
        "        p = mp.get_context(m).Process(target=child, args=(q, v))\n"
        "        p.start(); p.join()\n"
        "        q.get(timeout=30)\n"
        "    q.put(b'x' * 100000)  # spilled, never read\n"
        "    print(os.environ['SHMKIT_TRACKER'], flush=True)\n")
    env = dict(os.environ)
    env.pop("SHMKIT_TRACKER", None)  # a program of its own
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    prefix = "shmkit-py-%s-" % r.stdout.strip()

    def left():
        return [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]
    # everything goes moments after the program ended, the never-read spill with its queue
    deadline = time.monotonic() + 60
    while left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left() == []
