#!/bin/bash
# tool_rm: `shmkit rm` removes only what is provably shmkit's (issue 19.1). A small text file, a
# 1 MiB file of zeros, an empty file, a FIFO and a directory under object names are left alone,
# each with a message saying what it is; `rm A B` checks every name before removing any (a
# missing or foreign name among them: nothing removed, exit 1); ls does not invite removing a
# foreign file.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }

P=/tool-rm-$$
TMP=$(mktemp -d) || exit 99
cleanup() {
	for n in kept kept2; do "$SHMKIT" rm "$P.$n" >/dev/null 2>&1; done
	rm -rf "/dev/shm$P.text" "/dev/shm$P.zero" "/dev/shm$P.empty" "/dev/shm$P.fifo" \
		"/dev/shm$P.dir" "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

echo hi >"/dev/shm$P.text"
head -c 1048576 /dev/zero >"/dev/shm$P.zero"
: >"/dev/shm$P.empty"
mkfifo "/dev/shm$P.fifo"
mkdir "/dev/shm$P.dir"

# left_alone NAME WHAT: rm NAME exits 1, keeps the file, and its message says WHAT it is.
left_alone() {
	timeout 20 "$SHMKIT" rm "$1" 2>"$TMP/err"
	local rc=$?
	if [ $rc -eq 1 ] && [ -e "/dev/shm$1" ] && grep -q "not a shmkit object ($2" "$TMP/err"; then
		pass "rm $1: left alone: $(head -1 "$TMP/err")"
	else
		fail "rm $1: exit $rc, exists: $([ -e "/dev/shm$1" ] && echo yes || echo no): $(cat "$TMP/err")"
	fi
}
left_alone "$P.text" "a file of 3 bytes without shmkit's header"
left_alone "$P.zero" "a file of 1048576 bytes without shmkit's header"
left_alone "$P.empty" "a file of 0 bytes"
left_alone "$P.fifo" "a fifo"
left_alone "$P.dir" "a directory"
[ "$(cat "/dev/shm$P.text")" = hi ] || fail "the text file changed"

# Every name is checked before any is removed.
"$SHMKIT" create value "$P.kept" && "$SHMKIT" create queue "$P.kept2" --capacity 4 --max-size 64 || exit 99
"$SHMKIT" rm "$P.kept" "$P.missing" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && "$SHMKIT" stat "$P.kept" >/dev/null 2>&1 && grep -q "$P.missing: no such object" \
	"$TMP/err" && grep -q "nothing removed" "$TMP/err" &&
	pass "rm /kept /missing: nothing removed, exit 1" ||
	fail "rm /kept /missing: exit $rc, kept: $("$SHMKIT" stat "$P.kept" >/dev/null 2>&1 &&
		echo yes || echo no): $(cat "$TMP/err")"
"$SHMKIT" rm "$P.kept" "$P.zero" "$P.kept2" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && "$SHMKIT" stat "$P.kept" >/dev/null 2>&1 &&
	"$SHMKIT" stat "$P.kept2" >/dev/null 2>&1 && [ -e "/dev/shm$P.zero" ] &&
	pass "rm /kept /zero /kept2: nothing removed, exit 1" || fail "rm with a foreign name: exit $rc"
"$SHMKIT" rm "$P.kept" "$P.kept2" && ! "$SHMKIT" stat "$P.kept" >/dev/null 2>&1 &&
	! "$SHMKIT" stat "$P.kept2" >/dev/null 2>&1 && pass "rm of two objects removes both" ||
	fail "rm of two objects"

# (A region whose creator died before it was ready is removed: check_info's remove tests.)

# ls no longer invites the deletion of a file without a header.
"$SHMKIT" ls --all "$P.zero" >"$TMP/ls" 2>&1
grep -q "rm frees\|never finished" "$TMP/ls" && fail "ls invites rm of a foreign file: $(cat "$TMP/ls")"
grep -q "not a shmkit object" "$TMP/ls" && pass "ls: $(tail -1 "$TMP/ls" | tr -s ' ')" ||
	fail "ls of a zero file: $(cat "$TMP/ls")"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
exit 0
