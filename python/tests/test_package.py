"""The package's metadata for tools: signatures of the C methods, the stubs and py.typed.
(tests/python_pkg.sh builds, installs and imports the sdist and wheel.)"""
import ast
import inspect
import os
import re

import pytest

import shmkit
from shmkit import _shmkit

PKG = os.path.dirname(shmkit.__file__)
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def c_types():
    return [v for v in vars(_shmkit).values() if isinstance(v, type)
            and v.__module__ == "shmkit._shmkit" and not issubclass(v, BaseException)]


def c_callables():
    """(qualified name, object) of every C function and method the extension defines."""
    out = [("_shmkit." + k, v) for k, v in vars(_shmkit).items()
           if type(v).__name__ == "builtin_function_or_method"]
    for t in c_types():
        for k, v in vars(t).items():
            if type(v).__name__ == "method_descriptor":
                out.append(("%s.%s" % (t.__name__, k), v))
    return out


@pytest.mark.parametrize("qualname,func", c_callables(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_c_method_has_a_signature(qualname, func):
    sig = inspect.signature(func)  # ValueError without a __text_signature__
    assert not (func.__doc__ or "").startswith(func.__name__ + "("), \
        "the docstring still starts with the signature: " + func.__doc__


def test_public_methods_have_signatures():
    for cls in (shmkit.Queue, shmkit.JoinableQueue, shmkit.Lock, shmkit.RLock, shmkit.Semaphore,
                shmkit.Event, shmkit.Condition, shmkit.Barrier, shmkit.Connection):
        for name, member in inspect.getmembers(cls, callable):
            if not name.startswith("_") or name in ("__enter__",):
                inspect.signature(member)
    assert list(inspect.signature(shmkit.Queue.put).parameters) == ["self", "obj", "block",
                                                                    "timeout"]
    assert list(inspect.signature(shmkit.Lock.acquire).parameters) == ["self", "block",
                                                                       "timeout"]


def stub_members():
    tree = ast.parse(open(os.path.join(PKG, "_shmkit.pyi")).read())
    top, classes = set(), {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name for n in node.body
                                  if isinstance(n, (ast.FunctionDef, ast.AnnAssign))
                                  and not isinstance(n, ast.AnnAssign)} | \
                {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
            top.add(node.name)
        elif isinstance(node, ast.FunctionDef):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            top.add(node.target.id)
    return top, classes


def test_stub_covers_the_extension():
    top, classes = stub_members()
    missing = [k for k in vars(_shmkit) if not k.startswith("__") and k not in top]
    assert not missing, "_shmkit.pyi lacks " + ", ".join(missing)
    for t in c_types():
        have = {k for k in vars(t) if not (k.startswith("__") and k.endswith("__"))}
        assert not have - classes.get(t.__name__, set()), \
            "_shmkit.pyi's %s lacks %s" % (t.__name__, ", ".join(sorted(have - classes[t.__name__])))


def test_typed_package():
    assert os.path.exists(os.path.join(PKG, "py.typed"))


def test_version_is_configure_acs():
    path = os.path.join(TOP, "configure.ac")
    if not os.path.exists(path):
        pytest.skip("not in a checkout")
    m = re.search(r"AC_INIT\(\[shmkit\],\s*\[([0-9.]+)\]", open(path).read())
    assert shmkit.__version__ == m.group(1)


def test_stub_matches_the_extension():
    """mypy's stubtest, where Debian's python3-mypy is installed: every name and signature in
    _shmkit.pyi against the module as built."""
    import subprocess
    import sys
    try:
        import mypy.stubtest  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(PKG))
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "shmkit._shmkit"],
                       capture_output=True, text=True, env=env, timeout=600,
                       cwd=os.path.dirname(PKG))
    assert r.returncode == 0, r.stdout + r.stderr
