"""Fixtures for the binding's tests: the start methods, the shmkit tool, the C helper, and a
check that a test leaves nothing of this process's in /dev/shm."""
import multiprocessing
import os
import shutil

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

START_METHODS = ["fork", "spawn", "forkserver"]


@pytest.fixture(params=START_METHODS)
def ctx(request):
    """A multiprocessing context per start method: every test using it runs under all three."""
    return multiprocessing.get_context(request.param)


def _find(env, *candidates):
    path = os.environ.get(env)
    if path and os.access(path, os.X_OK):
        return path
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


@pytest.fixture(scope="session")
def tool():
    path = _find("SHMKIT", os.path.join(TOP, "tools", "shmkit"), shutil.which("shmkit"))
    if not path:
        pytest.skip("the shmkit tool is not built (set SHMKIT)")
    return path


@pytest.fixture(scope="session")
def interop():
    path = _find("SHMKIT_INTEROP", os.path.join(TOP, "tests", "py_interop"))
    if not path:
        pytest.skip("tests/py_interop is not built (set SHMKIT_INTEROP)")
    return path


@pytest.fixture
def uname(request):
    """A unique object name for this test, removed afterwards whatever happened."""
    made = []

    def make(tag="t"):
        name = "/shmkit-pytest-%d-%d-%s" % (os.getpid(), len(made), tag)
        made.append(name)
        return name

    yield make
    import shmkit
    for name in made:
        try:
            shmkit.remove(name)
        except OSError:
            pass
