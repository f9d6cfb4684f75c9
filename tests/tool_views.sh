#!/bin/bash
# tool_views: views judge liveness as the library does (issue 19.3), read-only. After a `lock
# run` holder is SIGKILLed, ls, stat, top and `lock holder` no longer say it holds the lock:
# they name it as dead (the next acquire recovers it) and top counts the death; a broken
# barrier is shown broken; a simplex pipe's direction is shown. Looking changes nothing: the
# dead holder's lock is still recovered, with SHMKIT_OWNER_DIED, by the next acquirer.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }

P=/tool-views-$$
TMP=$(mktemp -d) || exit 99
kids=()
cleanup() {
	local k
	for k in "${kids[@]}"; do kill -9 "$k" 2>/dev/null; done
	for n in l b p; do "$SHMKIT" rm "$P.$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
wait_for() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.05; n=$((n - 1)); done
	return 1
}
held() { "$SHMKIT" ls "$P.l" | grep -q "held by"; }

# --- a lock holder killed --------------------------------------------------------------------
"$SHMKIT" create lock "$P.l" || exit 99
"$SHMKIT" lock run "$P.l" sleep 60 &
holder=$!
kids+=($holder)
wait_for 20 held || fail "the lock was never held"
"$SHMKIT" top --json --interval 0.5 --iterations 8 "$P.l" >"$TMP/top" &
top=$!
kids+=($top)
sleep 1
kill -9 $holder
wait $holder 2>/dev/null
"$SHMKIT" ls "$P.l" >"$TMP/ls"
grep -q "free (holder $holder died holding it)" "$TMP/ls" && pass "ls: the dead holder named as dead" ||
	fail "ls after the holder's death: $(cat "$TMP/ls")"
"$SHMKIT" stat --json "$P.l" >"$TMP/stat"
grep -q "\"holder\":0" "$TMP/stat" && grep -q "\"holder_died\":\"pid $holder died" "$TMP/stat" &&
	pass "stat: holder 0, holder_died names pid $holder" || fail "stat --json: $(cat "$TMP/stat")"
"$SHMKIT" lock holder "$P.l" >"$TMP/h" 2>"$TMP/herr"
[ "$(cat "$TMP/h")" = 0 ] && grep -q "holder $holder died holding it" "$TMP/herr" &&
	pass "lock holder: 0, and the dead holder named on stderr" ||
	fail "lock holder: '$(cat "$TMP/h")' / $(cat "$TMP/herr")"
wait $top
tail -1 "$TMP/top" | grep -q '"deaths":1' && pass "top: the death counted" ||
	fail "top: $(tail -1 "$TMP/top")"
# Looking changed nothing: the next holder recovers the lock and is told.
timeout 20 "$SHMKIT" lock run "$P.l" true 2>"$TMP/run"
grep -qi "died" "$TMP/run" && pass "the next lock run recovers it and is told: $(head -1 "$TMP/run")" ||
	fail "lock run after the death: $(cat "$TMP/run")"
"$SHMKIT" ls "$P.l" | grep -q "free, 1 owner death" && pass "ls: free, 1 owner death" ||
	fail "ls after recovery: $("$SHMKIT" ls "$P.l")"

# --- a broken barrier ------------------------------------------------------------------------
"$SHMKIT" create barrier "$P.b" --parties 2 || exit 99
"$SHMKIT" barrier wait "$P.b" --timeout 0.2 >/dev/null 2>&1
"$SHMKIT" ls "$P.b" | grep -q "broken (2 parties)" && "$SHMKIT" stat --json "$P.b" |
	grep -q '"broken":true' && pass "a broken barrier: ls and stat say broken" ||
	fail "broken barrier: $("$SHMKIT" ls "$P.b")"

# --- a simplex pipe's direction ----------------------------------------------------------------
"$SHMKIT" create pipe "$P.p" --simplex --capacity 4 --max-size 64 >/dev/null 2>&1 &&
	{ "$SHMKIT" ls "$P.p" | grep -q "queued 0->1 (simplex)" && pass "simplex pipe: direction shown" ||
		fail "simplex pipe: $("$SHMKIT" ls "$P.p")"; }

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
exit 0
