#!/bin/sh
# The Python package as a user gets it: an sdist made from the tree (PEP 517, setuptools), a
# wheel built from that sdist alone, offline and without build isolation (Debian's setuptools
# and wheel), installed with pip into a venv, imported there and used. Checks what the sdist
# carries and what the wheel ships (py.typed and stubs, no debug information, only the module's
# init function exported). Skipped (77) without pip, venv or wheel.
[ -n "$SHMKIT_PYTHON" ] && [ "$SHMKIT_PYTHON" != no ] || exit 77
[ -d /dev/shm ] || exit 77
py=$SHMKIT_PYTHON
if ! "$py" -c 'import setuptools, wheel, venv' 2>/dev/null || ! "$py" -m pip --version >/dev/null 2>&1; then
	echo "python_pkg: needs pip, venv and wheel for $py (Debian: python3-pip python3-venv python3-wheel)"
	exit 77
fi
srcdir=${srcdir:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-pkg.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export PYTHONDONTWRITEBYTECODE=1
unset PYTHONPATH SHMKIT_TRACKER
fail() { echo "python_pkg: $*" >&2; exit 1; }

# A copy of what the sdist is made from, so nothing is written into the source tree (read-only
# under distcheck).
mkdir "$tmp/tree" "$tmp/dist" "$tmp/wheels"
(cd "$srcdir" && tar -cf - --exclude=python/build --exclude='*.egg-info' --exclude=__pycache__ \
	LICENSE configure.ac lib python) | (cd "$tmp/tree" && tar -xf -) || fail "cannot copy the tree"

# 1. the sdist, through the PEP 517 hook pip would call
(cd "$tmp/tree/python" && "$py" -c 'import sys, setuptools.build_meta as b
print(b.build_sdist(sys.argv[1]))' "$tmp/dist") >"$tmp/sdist.log" 2>&1 ||
	{ cat "$tmp/sdist.log"; fail "building the sdist failed"; }
sdist=$(ls "$tmp"/dist/shmkit-*.tar.gz) || fail "no sdist"
tar -tzf "$sdist" >"$tmp/sdist.list"
for f in pyproject.toml setup.py LICENSE README.md libshmkit/shmkit.h libshmkit/region.c \
	libshmkit/hold.c libshmkit/shmkit_version.h.in libshmkit/VERSION src/module.c src/common.h \
	src/_shmkit.map shmkit/__init__.py shmkit/_tracker.py shmkit/py.typed shmkit/_shmkit.pyi \
	PKG-INFO; do
	grep -q "^shmkit-[0-9.]*/$f\$" "$tmp/sdist.list" || fail "the sdist lacks $f"
done

# 2. a venv that sees Debian's setuptools and wheel, and a wheel built from the sdist alone
# (pip unpacks it in a directory of its own: no ../lib to fall back on)
if ! "$py" -m venv --system-site-packages "$tmp/venv" >"$tmp/venv.log" 2>&1; then
	cat "$tmp/venv.log"
	echo "python_pkg: $py cannot make a venv with pip (Debian: python3-venv)"
	exit 77
fi
vpy=$tmp/venv/bin/python
"$vpy" -m pip wheel --no-build-isolation --no-deps -w "$tmp/wheels" "$sdist" \
	>"$tmp/wheel.log" 2>&1 || { cat "$tmp/wheel.log"; fail "pip wheel from the sdist failed"; }
whl=$(ls "$tmp"/wheels/shmkit-*.whl) || fail "no wheel"
# README's way from a checkout first, then the wheel made from the sdist over it
"$vpy" -m pip install --no-build-isolation --no-deps "$tmp/tree/python" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "pip install --no-build-isolation ./python failed"; }
"$vpy" -c 'import shmkit' || fail "the package pip installed from ./python does not import"
"$vpy" -m pip install --no-deps --force-reinstall "$whl" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "pip install of the wheel failed"; }

# 3. what the wheel ships
"$vpy" - "$whl" <<'EOF' || fail "the wheel's contents"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for want in ("shmkit/py.typed", "shmkit/_shmkit.pyi", "shmkit/_tracker.py"):
    assert want in names, "missing " + want
assert any(n.endswith("/LICENSE") for n in names), "no LICENSE in the wheel"
meta = [n for n in names if n.endswith(".dist-info/METADATA")][0]
text = zipfile.ZipFile(sys.argv[1]).read(meta).decode()
for want in ("Name: shmkit", "Requires-Python: >=3.8", "License: MIT"):
    assert want in text, "METADATA lacks " + want
EOF
so=$(ls "$tmp"/venv/lib/python*/site-packages/shmkit/_shmkit*.so) || fail "no extension installed"
if command -v readelf >/dev/null 2>&1; then
	readelf -S "$so" | grep -q '\.debug_' && fail "the installed extension has debug information"
	exports=$(readelf --dyn-syms -W "$so" | awk '$5 == "GLOBAL" && $7 != "UND" {print $8}')
	[ "$exports" = PyInit__shmkit ] || fail "the extension exports more than PyInit__shmkit: $exports"
fi

# 4. the installed package at work, away from the tree (a file: spawn children import it)
cd "$tmp" || exit 1
cat >"$tmp/smoke.py" <<'EOF'
import inspect, multiprocessing as mp, os, sys
import shmkit


def child(q, v, lock):
    with lock:
        v.value += 1
    q.put(("hello", os.getpid()))


if __name__ == "__main__":
    assert shmkit.__file__.startswith(sys.prefix), shmkit.__file__
    q, v, lock = shmkit.Queue(), shmkit.Value("i", 0), shmkit.Lock()
    for method in ("fork", "spawn"):
        p = mp.get_context(method).Process(target=child, args=(q, v, lock))
        p.start()
        assert q.get(timeout=60)[0] == "hello"
        p.join(60)
        assert p.exitcode == 0
    assert v.value == 2
    for meth in (shmkit.Queue.put, shmkit.Lock.acquire, shmkit.Event.wait, shmkit.info):
        inspect.signature(meth)
    print("python_pkg: shmkit", shmkit.__version__, "from", os.path.dirname(shmkit.__file__))
EOF
"$vpy" "$tmp/smoke.py" || fail "the installed package does not work"
