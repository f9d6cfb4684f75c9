"""Build the shmkit Python package: pure-Python modules plus the C extension shmkit._shmkit.

libshmkit's sources are compiled into the extension, so it needs no installed library. They
come from ../lib in a checkout of the repository (``pip install ./python``, or ``make check``,
which runs ``setup.py build`` into the build tree), and from libshmkit/ in an sdist, where the
sdist command below copies them together with the version (configure.ac's AC_INIT, written
once). The project's metadata is in pyproject.toml.
"""
import glob
import os
import re
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.join(HERE, "..")         # a checkout: ../lib and ../configure.ac
BUNDLED = os.path.join(HERE, "libshmkit")  # an sdist: the copies made by Sdist below
os.chdir(HERE)  # setuptools wants relative paths; make and pip may run us from elsewhere


def lib_dir():
    if os.path.exists(os.path.join(BUNDLED, "shmkit.h")):
        return BUNDLED
    if os.path.exists(os.path.join(TREE, "lib", "shmkit.h")):
        return os.path.join(TREE, "lib")
    raise SystemExit("setup.py: libshmkit's sources are neither in ./libshmkit (an sdist) nor "
                     "in ../lib (a checkout)")


def project_version():
    """From configure.ac's AC_INIT in a checkout, from libshmkit/VERSION in an sdist."""
    if os.path.exists(os.path.join(BUNDLED, "VERSION")):
        with open(os.path.join(BUNDLED, "VERSION")) as f:
            text = f.read().strip()
        m = re.fullmatch(r"([0-9]+)\.([0-9]+)\.([0-9]+)", text)
        where = "libshmkit/VERSION"
    else:
        with open(os.path.join(TREE, "configure.ac")) as f:
            m = re.search(r"AC_INIT\(\[shmkit\],\s*\[([0-9]+)\.([0-9]+)\.([0-9]+)\]", f.read())
        where = "../configure.ac's AC_INIT"
    if not m:
        raise SystemExit("setup.py: no version in %s" % where)
    return m.groups()


VERSION = project_version()
LIB = lib_dir()


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


def lib_sources():
    # shmkit_version.h is made from its .in for this build (a configured tree has one too)
    return [p for p in sorted(glob.glob(os.path.join(LIB, "*.[ch]")))
            if os.path.basename(p) != "shmkit_version.h"]


class BuildExt(build_ext):
    """Copy the library's sources into the build tree first, so that their objects land
    there too (compiled from ../lib they would be written outside build_temp)."""

    def build_extension(self, ext):
        dest = os.path.join(self.build_temp, "libshmkit")
        os.makedirs(dest, exist_ok=True)
        copied = []
        for path in lib_sources():
            target = os.path.join(dest, os.path.basename(path))
            if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(path):
                shutil.copyfile(path, target)
            if target.endswith(".c"):
                copied.append(target)
        write_version_header(dest)
        ext.sources = [s for s in ext.sources if s.startswith("src/")] + copied
        ext.include_dirs = ["src", dest]
        super().build_extension(ext)


class Sdist(sdist):
    """The sdist carries the library's sources and the version, so it builds on its own."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        dest = os.path.join(base_dir, "libshmkit")
        os.makedirs(dest, exist_ok=True)
        for path in lib_sources() + [os.path.join(LIB, "shmkit_version.h.in")]:
            shutil.copyfile(path, os.path.join(dest, os.path.basename(path)))
        with open(os.path.join(dest, "VERSION"), "w") as f:
            f.write(".".join(VERSION) + "\n")


ext = Extension(
    "shmkit._shmkit",
    sources=sorted(glob.glob("src/*.c")),
    depends=glob.glob("src/*.h") + lib_sources() + ["src/_shmkit.map"],
    # -g0: no debug information in what is installed (it comes after Python's own -g).
    extra_compile_args=["-std=gnu11", "-Wall", "-Wno-unused-parameter", "-pthread",
                        "-fvisibility=hidden", "-Wno-missing-field-initializers", "-g0"],
    # Only the module's init function is exported: libshmkit's functions, compiled in, stay
    # local to the extension (they would otherwise interpose on, or be interposed by, a
    # libshmkit.so loaded into the same process).
    extra_link_args=["-pthread", "-Wl,--version-script=src/_shmkit.map", "-Wl,--strip-debug"],
    libraries=["rt"],
)

setup(
    version=".".join(VERSION),
    packages=["shmkit"],
    package_data={"shmkit": ["py.typed", "*.pyi"]},
    license_files=["LICENSE"],
    zip_safe=False,
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt, "sdist": Sdist},
)
