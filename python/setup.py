"""Build the shmkit Python package: pure-Python modules plus the C extension shmkit._shmkit.

libshmkit's sources (../lib) are compiled into the extension, so it needs no installed
library: ``pip install ./python`` from the repository, or ``make check`` (which runs
``setup.py build`` into the build tree).
"""
import glob
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "..", "lib")
os.chdir(HERE)  # setuptools wants relative paths; make and pip may run us from elsewhere


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
    version="0.1.0",
    description="multiprocessing's primitives in named POSIX shared memory, shared with C",
    packages=["shmkit"],
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    python_requires=">=3.8",
)
