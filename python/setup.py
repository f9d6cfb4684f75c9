"""Build the shmkit Python package: pure-Python modules plus the C extension shmkit._shmkit.

libshmkit's sources (../lib) are compiled into the extension, so it needs no installed
library: ``pip install ./python`` from the repository, or ``make check`` (which runs
``setup.py build`` into the build tree).
"""
import glob
import os
import re
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "..", "lib")
os.chdir(HERE)  # setuptools wants relative paths; make and pip may run us from elsewhere


def project_version():
    """The version is written once, in configure.ac's AC_INIT: read it from there."""
    with open(os.path.join(HERE, "..", "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[shmkit\],\s*\[([0-9]+)\.([0-9]+)\.([0-9]+)\]", f.read())
    if not m:
        raise SystemExit("setup.py: no version in ../configure.ac's AC_INIT")
    return m.groups()


VERSION = project_version()


def write_version_header(dest):
    """What configure makes of lib/shmkit_version.h.in, made here so that pip needs no
    configure run."""
    with open(os.path.join(LIB, "shmkit_version.h.in")) as f:
        text = f.read()
    for key, val in (("PACKAGE_VERSION", ".".join(VERSION)), ("SHMKIT_VERSION_MAJOR", VERSION[0]),
                     ("SHMKIT_VERSION_MINOR", VERSION[1]), ("SHMKIT_VERSION_PATCH", VERSION[2])):
        text = text.replace("@%s@" % key, val)
    path = os.path.join(dest, "shmkit_version.h")
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


class BuildExt(build_ext):
    """Copy the library's sources into the build tree first, so that their objects land
    there too (compiled from ../lib they would be written outside build_temp)."""

    def build_extension(self, ext):
        dest = os.path.join(self.build_temp, "libshmkit")
        os.makedirs(dest, exist_ok=True)
        copied = []
        for path in sorted(glob.glob(os.path.join(LIB, "*.[ch]"))):
            target = os.path.join(dest, os.path.basename(path))
            if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(path):
                shutil.copyfile(path, target)
            if target.endswith(".c"):
                copied.append(target)
        write_version_header(dest)
        ext.sources = [s for s in ext.sources if not s.startswith("../lib/")] + copied
        ext.include_dirs = ["src", dest]
        super().build_extension(ext)


ext = Extension(
    "shmkit._shmkit",
    sources=sorted(glob.glob("src/*.c")),
    depends=glob.glob("src/*.h") + glob.glob("../lib/*.[ch]"),
    extra_compile_args=["-std=gnu11", "-Wall", "-Wno-unused-parameter", "-pthread",
                        "-fvisibility=hidden", "-Wno-missing-field-initializers"],
    extra_link_args=["-pthread"],
    libraries=["rt"],
)

setup(
    name="shmkit",
    version=".".join(VERSION),
    description="multiprocessing's primitives in named POSIX shared memory, shared with C",
    packages=["shmkit"],
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    python_requires=">=3.8",
)
