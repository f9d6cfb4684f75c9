"""Nothing left in /dev/shm: a program's anonymous objects go once nobody holds them, however
its processes end, and never while a live process (Python, C, the tool) has one open."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import shmkit
from shmkit import _registry

SHM = "/dev/shm"
KINDS = """[shmkit.Queue(), shmkit.JoinableQueue(), shmkit.SimpleQueue(), shmkit.Pipe(),
            shmkit.Pipe(False), shmkit.Lock(), shmkit.RLock(), shmkit.Semaphore(2),
            shmkit.BoundedSemaphore(), shmkit.Event(), shmkit.Condition(), shmkit.Barrier(2),
            shmkit.Value('i', 1), shmkit.Array('d', 3), shmkit.RawValue('i'),
            shmkit.RawArray('b', 7), shmkit.SharedMemory(create=True, size=100)]"""


def names_of(tid):
    return sorted(n for n in os.listdir(SHM) if n.startswith("shmkit-py-%s-" % tid))


def wait_until(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours is dead too
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def env():
    e = dict(os.environ)
    e.pop("SHMKIT_TRACKER", None)  # a program of its own, with a tracker of its own
    return e


def program(tmp_path, body):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env=env())


HOLDER = """
    import multiprocessing as mp, os, sys, time, shmkit

    def child(ready, objs, main):
        objs[0].put(b'y' * 100000)  # a message of many slots, unread
        ready.put(os.getpid())
        while True:  # until the main process is gone (and reaped)
            try:
                os.kill(main, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # then a while longer, holding everything

    if __name__ == '__main__':
        objs = %s
        objs[0].put(b'x' * 100000)
        objs[1].put(1)
        ready = shmkit.Queue()
        methods = ['fork', 'spawn', 'forkserver']
        for m in methods:
            mp.get_context(m).Process(target=child, args=(ready, objs, os.getpid())).start()
        pids = [ready.get(timeout=120) for m in methods]
        print(os.environ['SHMKIT_TRACKER'], *pids, flush=True)
        time.sleep(600)
""" % KINDS


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_program_leaves_nothing(tmp_path, sig):
    p = program(tmp_path, HOLDER)
    try:
        tid, *pids = p.stdout.readline().split()
        pids = [int(x) for x in pids]
        made = names_of(tid)
        assert len(made) >= 17, made  # every kind and the ready queue
    except BaseException:
        p.kill()
        raise
    p.send_signal(sig)
    p.wait(60)
    # the children outlive the parent, holding everything: nothing goes while they live
    assert all(alive(pid) for pid in pids)
    assert set(names_of(tid)) >= set(made) - {n for n in made if "-spill-" in n}
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 60)
    assert wait_until(lambda: not names_of(tid), 60), names_of(tid)


ORPHAN = """
    import multiprocessing as mp, os, signal, sys, shmkit

    def child(objs, out):
        q, lock, shm, v, ev, conn = objs
        with lock:
            v.value += 1
        shm.buf[0] = 7
        ev.set()
        ok = q.empty() and ev.is_set() and conn.name == objs[5].name
        with open(out, 'a') as f:
            f.write('%s %s\\n' % (mp.current_process().name, ok))

    if __name__ == '__main__':
        a, b = shmkit.Pipe()
        objs = [shmkit.Queue(), shmkit.Lock(), shmkit.SharedMemory(create=True, size=8),
                shmkit.Value('i'), shmkit.Event(), b]
        print(os.environ['SHMKIT_TRACKER'], flush=True)
        for m in ('spawn', 'forkserver'):
            mp.get_context(m).Process(target=child, args=(objs, sys.argv[1]), name=m).start()
        # Gone before the children opened anything (they are still starting Python).
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_spawn_children_open_after_parent_died(tmp_path):
    out = tmp_path / "out"
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(ORPHAN))
    p = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE,
                         text=True, env=env())
    tid = p.stdout.readline().strip()
    p.wait(60)
    assert p.returncode == -signal.SIGKILL
    assert wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 2, 60), \
        out.read_text() if out.exists() else "no output"
    assert sorted(out.read_text().splitlines()) == ["forkserver True", "spawn True"]
    assert wait_until(lambda: not names_of(tid), 60), names_of(tid)


def test_dropped_objects_are_freed_while_the_program_lives():
    tid = _registry._ensure()
    before = set(names_of(tid))
    for i in range(100):
        q = shmkit.Queue()
        q.put(i)
        a, b = shmkit.Pipe()
        lk = shmkit.Lock()
    del q, a, b, lk
    # freed as they are dropped: at most the last few wait for the tracker
    assert len(set(names_of(tid)) - before) <= 6
    assert wait_until(lambda: not set(names_of(tid)) - before, 30), names_of(tid)


def test_dropped_object_held_by_a_child_goes_when_the_child_ends(ctx):
    tid = _registry._ensure()
    q = shmkit.Queue()
    name = q._name  # (not .name, which would pin it)
    done = shmkit.Event()
    p = ctx.Process(target=_hold_until_told, args=(q, done))
    p.start()
    p._args = ()  # (the Process object would keep the parent's queue alive)
    assert q.get(timeout=60) == "holding"
    del q
    time.sleep(2.5)  # the tracker looked at least twice: the child holds it
    assert os.path.exists(SHM + name)
    done.set()
    p.join(60)
    assert wait_until(lambda: not os.path.exists(SHM + name), 30)
    assert tid in name


def _hold_until_told(q, done):
    q.put("holding")
    done.wait(60)


def test_read_name_is_kept_until_the_program_ends():
    lk = shmkit.Lock()
    name = lk.name
    del lk
    time.sleep(3.5)  # past the grace and a few looks
    again = shmkit.Lock.attach(name)  # still there: someone may open it by name
    assert again.acquire(False)
    again.release()


def test_c_holder_keeps_it_after_the_program_died(tmp_path, interop):
    p = program(tmp_path, """
        import os, subprocess, sys, time, shmkit
        lk = shmkit.Lock()
        h = subprocess.Popen([%r, 'hold', lk._name], stdout=subprocess.PIPE, text=True)
        assert h.stdout.readline().strip() == 'held'
        print(os.environ['SHMKIT_TRACKER'], lk._name, h.pid, flush=True)
        time.sleep(600)
    """ % interop)
    tid, name, holder = p.stdout.readline().split()
    p.kill()
    p.wait(60)
    try:
        time.sleep(3)  # the tracker's last look found it held, and looks again each second
        assert os.path.exists(SHM + name)
        assert shmkit.info(name)["holder"] > 0  # and it is the live C program's
    finally:
        os.kill(int(holder), signal.SIGKILL)
    assert wait_until(lambda: not names_of(tid), 60), names_of(tid)


def test_tool_user_keeps_it_after_the_program_died(tmp_path, tool):
    p = program(tmp_path, """
        import os, sys, time, shmkit
        ev = shmkit.Event()
        print(os.environ['SHMKIT_TRACKER'], ev._name, flush=True)
        time.sleep(600)
    """)
    tid, name = p.stdout.readline().split()
    waiter = subprocess.Popen([tool, "event", "wait", name])
    try:
        time.sleep(1)
        assert waiter.poll() is None
        p.kill()
        p.wait(60)
        time.sleep(3)  # the tracker's last look found it held, and looks again each second
        assert os.path.exists(SHM + name)
        assert waiter.poll() is None
        # still the same event: setting it now wakes the waiter
        subprocess.run([tool, "event", "set", name], check=True, timeout=60)
        assert waiter.wait(60) == 0
    finally:
        if waiter.poll() is None:
            waiter.kill()
        waiter.wait(60)
    assert wait_until(lambda: not names_of(tid), 60), names_of(tid)


def test_remove_unused_refuses_held_objects(uname):
    lk = shmkit.Lock(name=uname())
    with pytest.raises(OSError):
        shmkit._shmkit.remove_unused(lk._name)
    assert os.path.exists(SHM + lk._name)
    name = lk._name
    del lk
    shmkit._shmkit.remove_unused(name)
    assert not os.path.exists(SHM + name)
