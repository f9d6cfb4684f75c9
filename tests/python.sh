#!/bin/sh
# The Python binding's pytest suite (python/tests), run against the extension that `make check`
# built into the build tree. Skipped (77) when configure found no usable Python.
[ -n "$SHMKIT_PYTHON" ] && [ "$SHMKIT_PYTHON" != no ] || exit 77
[ -d /dev/shm ] || exit 77
PYTHONPATH=$SHMKIT_PY_LIB${PYTHONPATH:+:$PYTHONPATH}
PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH PYTHONDONTWRITEBYTECODE
exec "$SHMKIT_PYTHON" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
	"${srcdir:-.}/python/tests"
