"""The pool lessons in examples/python run and say what their docstrings promise."""
import os
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(TOP, "examples", "python")


def run(name, *args):
    path = os.path.join(EXAMPLES, name)
    if not os.path.exists(path):
        pytest.skip("%s is not in this tree" % path)
    r = subprocess.run([sys.executable, path] + list(args), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_datastore_lost_update_and_lock():
    out = run("datastore.py")
    value = int(out.split("ending value ")[1].split()[0])
    assert 1 <= value <= 3  # two updates at once lose one (usually 2)
    assert "ending value 3 of 3" in run("datastore.py", "--lock")


def test_crash_only_the_killed_task_fails():
    lines = run("crash.py").splitlines()
    assert lines[3].startswith("task 3: failed: worker ") and "SIGKILL" in lines[3]
    assert [line for i, line in enumerate(lines[:8]) if i != 3] == [
        "task %d: %d" % (i, i * i) for i in range(8) if i != 3]
    assert lines[8] == "the pool still works: 12 squared is 144"


def test_crash_retried():
    lines = run("crash.py", "--retries", "1").splitlines()
    assert lines[:8] == ["task %d: %d" % (i, i * i) for i in range(8)]


def test_crash_stdlib_breaks():
    out = run("crash.py", "--stdlib")
    assert "task 3: failed: BrokenProcessPool" in out
    assert "BrokenProcessPool" in out.splitlines()[-1]
