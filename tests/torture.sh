#!/bin/bash
# The quick SIGKILL torture (issue 5): `shmkit torture` kills at least 200 random producers,
# consumers, lock holders and pipe ends over about 20 seconds and checks that nothing was lost,
# duplicated, torn or wedged; it exits 0 only when every check passed. This script also checks
# that the kills really happened and that the run left no object behind in /dev/shm.
set -u
: "${SHMKIT:?SHMKIT must name the built shmkit tool}"

if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
	echo "no writable /dev/shm: skipped"
	exit 77
fi

fail() {
	echo "FAIL: $*"
	exit 1
}

out=$("$SHMKIT" torture --seconds 20 --kills 300 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 0 ] || fail "shmkit torture exited with status $rc"

kills=$(sed -n 's/^  kills survived *\([0-9][0-9]*\).*/\1/p' <<<"$out")
[ -n "$kills" ] || fail "no 'kills survived' figure in the output"
[ "$kills" -ge 200 ] || fail "only $kills kills (at least 200 wanted)"
grep -q 'all checks passed' <<<"$out" || fail "no 'all checks passed' in the output"

# The tool names its objects /shmkit-torture-<its pid>-*; none may outlive it.
left=$(find /dev/shm -maxdepth 1 -name 'shmkit-torture-*' 2>/dev/null | while read -r f; do
	pid=${f#/dev/shm/shmkit-torture-}
	pid=${pid%%-*}
	kill -0 "$pid" 2>/dev/null || echo "$f"
done)
[ -z "$left" ] || fail "objects left behind: $left"

