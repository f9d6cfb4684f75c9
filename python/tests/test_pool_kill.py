"""Killed workers, timeouts, terminate(), Ctrl-C and a killed parent: what shmkit's pools
promise (issue 21). Every outcome is checked exactly: each task is reported once (a result,
or WorkerDied/TaskTimeout), no task runs twice unless retried, the pool keeps working, and
nothing is left running or in /dev/shm."""
import functools
import multiprocessing
import os
import re
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import shmkit
from shmkit.futures import BrokenProcessPool, ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))


_runs = None


def set_runs(runs):
    """Initializer: the shared count of executions, opened once per worker (opening a shared
    array per task would cost more than the task)."""
    global _runs
    _runs = runs


def work(i):
    _runs[i] += 1  # one increment per execution: a task run twice shows
    if i % 16 == 0:
        time.sleep(0.001)  # the workers spend much of their time inside a task
    return i


def sleep_return(t, value):
    time.sleep(t)
    return value


def getpid():
    return os.getpid()


def _mine(pid=None):
    """This process's pool objects in /dev/shm."""
    # Anonymous names are /shmkit-py-<tracker>-<pid>-<n>-<tag>-<random> (_registry.py).
    tag = re.compile(r"shmkit-py-[0-9a-f]+-%d-" % (pid or os.getpid()))
    return [n for n in os.listdir("/dev/shm") if tag.match(n) and "-pool" in n]


def _gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
                continue
            try:  # a child of ours not yet reaped is dead too
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    alive.discard(pid)
            except ChildProcessError:
                if open("/proc/%d/stat" % pid).read().split(")")[-1].split()[0] == "Z":
                    alive.discard(pid)
        time.sleep(0.02)
    return not alive


def _runs_pool(processes, method, rounds, n):
    runs = shmkit.RawArray("i", rounds * n)
    pool = shmkit.Pool(processes, context=multiprocessing.get_context(method),
                       initializer=set_runs, initargs=(runs,))
    return pool, runs


def _kill_rounds(pool, all_runs, rounds, n, retries, rng):
    """Run n tasks `rounds` times, SIGKILLing a random worker in the middle of each round."""
    killed = died = 0
    for rnd in range(rounds):
        base = rnd * n
        calls = [0] * n
        outcome = [None] * n
        lock = threading.Lock()
        reported = [0]
        quarter, whole = threading.Event(), threading.Event()

        def report(i, kind, value):
            calls[i] += 1
            outcome[i] = (kind, value)
            with lock:
                reported[0] += 1
                if reported[0] >= n // 4:
                    quarter.set()
                if reported[0] == n:
                    whole.set()

        results = [pool.apply_async(work, (base + i,),
                                    callback=functools.partial(report, i, "ok"),
                                    error_callback=functools.partial(report, i, "err"),
                                    retries=retries)
                   for i in range(n)]
        assert quarter.wait(120)  # kill once part of the round is done
        victim = rng.choice(pool._pool)
        os.kill(victim.pid, signal.SIGKILL)
        killed += 1
        assert whole.wait(120)
        time.sleep(0.01)  # a second report of any task would show now
        runs = all_runs[base:base + n]
        for i, r in enumerate(results):
            assert calls[i] == 1, "task %d reported %d times" % (i, calls[i])
            kind, value = outcome[i]
            if kind == "ok":
                assert value == base + i and r.get(0) == base + i
                assert 1 <= runs[i] <= 1 + retries
            else:
                assert isinstance(value, shmkit.WorkerDied), repr(value)
                assert value.signal == signal.SIGKILL and "SIGKILL" in str(value)
                assert value.pid == victim.pid
                assert runs[i] <= 1 + retries
                died += 1
        assert died <= killed
    return killed, died


def test_sigkill_random_worker_50_times():
    rng = random.Random(21)
    pool, runs = _runs_pool(3, "fork", 50, 1000)
    with pool:
        killed, died = _kill_rounds(pool, runs, 50, 1000, 0, rng)
        # the pool is whole: three workers, all answering
        assert pool.map(abs, range(-50, 50)) == [abs(x) for x in range(-50, 50)]
        assert len(pool._pool) == 3
        assert len({pool.apply(getpid) for _ in range(30)} - {w.pid for w in pool._pool}) == 0
    assert killed == 50
    assert died >= 1  # some kills did land inside a task (almost all do)
    shmkit.remove(runs._shmkit_name)


def test_sigkill_with_retries():
    rng = random.Random(7)
    pool, runs = _runs_pool(3, "fork", 10, 1000)
    with pool:
        killed, died = _kill_rounds(pool, runs, 10, 1000, 1, rng)
    shmkit.remove(runs._shmkit_name)
    assert died == 0  # every killed task ran again (one kill per round, one retry each)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_sigkill_other_start_methods(method):
    rng = random.Random(3)
    pool, runs = _runs_pool(2, method, 2, 300)
    with pool:
        _kill_rounds(pool, runs, 2, 300, 0, rng)
        assert pool.apply(abs, (-3,)) == 3
    shmkit.remove(runs._shmkit_name)


def test_executor_sigkill_rounds():
    rng = random.Random(5)
    runs = shmkit.RawArray("i", 10 * 500)
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork"),
                             initializer=set_runs, initargs=(runs,)) as ex:
        for rnd in range(10):
            base = rnd * 500
            futs = [ex.submit(work, base + i) for i in range(500)]
            while sum(f.done() for f in futs) < 100:
                time.sleep(0.01)
            victim = rng.choice(list(ex._processes.values()))
            os.kill(victim.pid, signal.SIGKILL)
            died = 0
            for i, f in enumerate(futs):
                e = f.exception(120)
                if e is None:
                    assert f.result() == base + i and runs[base + i] == 1
                else:
                    assert isinstance(e, BrokenProcessPool) and isinstance(e, shmkit.WorkerDied)
                    assert runs[base + i] <= 1
                    died += 1
            assert died <= 1
        assert ex.submit(abs, -1).result() == 1
    shmkit.remove(runs._shmkit_name)


def test_kill_while_idle_and_all_at_once():
    with shmkit.Pool(2, context=multiprocessing.get_context("fork")) as pool:
        for w in pool._pool:
            os.kill(w.pid, signal.SIGKILL)
        assert pool.map(abs, range(-20, 0)) == list(range(20, 0, -1))
        rs = [pool.apply_async(sleep_return, (0.3, i)) for i in range(4)]
        time.sleep(0.15)
        for w in pool._pool:
            os.kill(w.pid, signal.SIGKILL)
        out = []
        for r in rs:
            try:
                out.append(r.get(60))
            except shmkit.WorkerDied:
                out.append("died")
        assert out.count("died") <= 2 and len(out) == 4
        assert pool.apply(abs, (-5,)) == 5


def test_timeout_kills_and_replaces():
    with shmkit.Pool(2, context=multiprocessing.get_context("fork")) as pool:
        before = {w.pid for w in pool._pool}
        slow = pool.apply_async(sleep_return, (30, "slow"), timeout=0.5)
        quick = [pool.apply_async(sleep_return, (0.01, i), timeout=5) for i in range(20)]
        t0 = time.monotonic()
        with pytest.raises(shmkit.TaskTimeout) as info:
            slow.get(60)
        assert time.monotonic() - t0 < 20
        assert isinstance(info.value, shmkit.WorkerDied) and "timeout" in str(info.value)
        assert [q.get(60) for q in quick] == list(range(20))
        assert len(pool._pool) == 2 and {w.pid for w in pool._pool} != before
        # a pool-wide timeout, and a retry after it
        assert pool.apply(sleep_return, (0.05, "ok")) == "ok"
    with shmkit.Pool(1, timeout=0.3, retries=1) as pool:
        with pytest.raises(shmkit.TaskTimeout):
            pool.apply_async(sleep_return, (30, 0)).get(60)
        assert pool.apply(sleep_return, (0, 1)) == 1
    with ProcessPoolExecutor(1, timeout=0.3) as ex:
        with pytest.raises(BrokenProcessPool):
            ex.submit(sleep_return, 30, 0).result(60)
        assert ex.submit(sleep_return, 0, 2).result(60) == 2


def test_terminate_leaves_nothing():
    pool = shmkit.Pool(3)
    rs = [pool.apply_async(sleep_return, (10, i)) for i in range(6)]
    time.sleep(0.2)
    pids = [w.pid for w in pool._pool]
    assert _mine()
    pool.terminate()
    pool.join()
    assert _gone(pids)
    assert _mine() == []
    for r in rs:
        with pytest.raises(BrokenProcessPool):
            r.get(10)
    ex = ProcessPoolExecutor(2)
    ex.submit(abs, 1).result()
    pids = list(ex._processes)
    ex.shutdown()
    assert _gone(pids) and _mine() == []


SCRIPT = """
import os, sys, time, multiprocessing
import shmkit, shmkit.futures
from test_pool_kill import sleep_return
if __name__ == "__main__":
    kind, how = sys.argv[1], sys.argv[2]
    ctx = multiprocessing.get_context("fork")
    if kind == "pool":
        p = shmkit.Pool(2, context=ctx)
        pids = [w.pid for w in p._pool]
        call = lambda: p.apply_async(sleep_return, (60, 1)).get()
    else:
        p = shmkit.futures.ProcessPoolExecutor(2, mp_context=ctx)
        p.submit(abs, 1).result()
        pids = list(p._processes)
        call = lambda: p.submit(sleep_return, 60, 1).result()
    print(" ".join(map(str, pids)), flush=True)
    if how == "with":
        with p:
            call()
    else:
        call()
"""


def _start_script(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE] + sys.path)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SCRIPT)] + list(args),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    pids = [int(x) for x in proc.stdout.readline().split()]
    assert len(pids) == 2
    time.sleep(0.3)  # the task is running
    return proc, pids


@pytest.mark.parametrize("kind", ["pool", "executor"])
@pytest.mark.parametrize("how", ["with", "bare"])
def test_ctrl_c_leaves_nothing(kind, how):
    proc, pids = _start_script(kind, how)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert b"KeyboardInterrupt" in err
    assert _gone(pids)
    assert _mine(proc.pid) == []


@pytest.mark.parametrize("kind", ["pool", "executor"])
def test_killed_parent_leaves_nothing(kind):
    proc, pids = _start_script(kind, "bare")
    assert _mine(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    # the workers see their inboxes at EOF (the only writer died), exit and unlink the pool
    deadline = time.monotonic() + 20
    while _mine(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mine(proc.pid) == []


def test_names_say_whose_pool(tool):
    with shmkit.Pool(2) as pool:
        out = subprocess.run([tool, "ls"], capture_output=True, text=True, check=True).stdout
        tag = "pool%d-" % os.getpid()
        ours = [line.split()[0] for line in out.splitlines() if tag in line]
        kinds = sorted(n.split(tag)[1].rsplit("-", 1)[0] for n in ours)
        assert kinds == ["in0", "in1", "results", "slots"], out
        pool.apply(abs, (1,))
    assert _mine() == []


@pytest.mark.parametrize("kind", ["pool", "executor"])
def test_group_sigterm_leaves_nothing(kind):
    """SIGTERM to the whole group (`timeout`, `kill -TERM -PGID`): parent and workers die at
    once, and the workers unlink the pool on their way out."""
    proc, pids = _start_script(kind, "bare")
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert _gone(pids)
    assert _mine(proc.pid) == []
