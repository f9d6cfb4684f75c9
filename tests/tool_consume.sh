#!/bin/bash
# tool_consume: what `shmkit consume` takes is not lost (issue 19.2). Each message is on the
# output before the next is taken, to a file or pipe too (not block-buffered); a consumer
# SIGKILLed while its output is slow loses at most the one message in hand, and with --ack
# that one is counted (stat's "lost to dead consumers"), never silent; --ack --exec gives a
# message's slot back only once the command finished; SIGINT ends a --verify run with its
# summary printed.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3 (the slow reader)"; exit 77; }

Q=/tool-consume-$$
TMP=$(mktemp -d) || exit 99
kids=()
cleanup() {
	local k
	for k in "${kids[@]}"; do kill -9 "$k" 2>/dev/null; done
	for n in live kill0 kill1 exec sig; do "$SHMKIT" rm "$Q.$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# wait_for SECONDS CMD...: until CMD succeeds, polling every 0.05 s.
wait_for() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.05; n=$((n - 1)); done
	return 1
}
lines() { [ "$(wc -l <"$1")" -ge "$2" ]; }
stat_field() { "$SHMKIT" stat "$1" | sed -n "s/^$2: *//p"; }
field_is() { [ "$(stat_field "$1" "$2")" = "$3" ]; }

# --- lines reach a file while consume still runs ---------------------------------------------
"$SHMKIT" create queue "$Q.live" --capacity 16 --max-size 64 || exit 99
{ printf 'one\ntwo\nthree\n'; sleep 60; } | "$SHMKIT" produce "$Q.live" &
kids+=($!)
"$SHMKIT" consume "$Q.live" >"$TMP/live" &
cons=$!
kids+=($cons)
if wait_for 20 lines "$TMP/live" 3 && kill -0 $cons 2>/dev/null; then
	pass "consume > file: 3 lines written while it still runs"
else
	fail "consume > file: $(wc -l <"$TMP/live") lines while messages were taken"
fi
kill $cons 2>/dev/null

# --- SIGKILL while the output is slow ----------------------------------------------------------
# kill_run TAG ACK: N numbered lines through a consumer whose reader is slow (so it is killed
# while writing), then a drain; prints "missing counted" (lines in neither output, and the
# queue's count of messages lost to dead consumers).
N=20000
kill_run() {
	local q=$Q.$1
	"$SHMKIT" create queue "$q" --capacity 1024 --max-size 64 || return 1
	seq 1 $N | "$SHMKIT" produce "$q" &
	local prod=$!
	kids+=($prod)
	( "$SHMKIT" consume $2 "$q" & echo $! >"$TMP/pid.$1"; wait ) |
		python3 -c '
import sys, time
for l in sys.stdin:
    sys.stdout.write(l); sys.stdout.flush(); time.sleep(0.0002)' >"$TMP/out.$1" &
	local pipe=$!
	wait_for 20 lines "$TMP/out.$1" 2000
	kill -9 "$(cat "$TMP/pid.$1")"
	wait $pipe
	timeout 60 "$SHMKIT" consume --timeout 5 "$q" >"$TMP/drain.$1"
	wait $prod
	local u k
	u=$(sort -u "$TMP/out.$1" "$TMP/drain.$1" | wc -l)
	k=$(stat_field "$q" "lost to dead consumers")
	echo "$((N - u)) $k $(wc -l <"$TMP/out.$1") $(wc -l <"$TMP/drain.$1")"
}
read -r miss counted out drained < <(kill_run kill0 "")
[ "$miss" -le 1 ] && pass "killed consumer: $miss of $N missing (the one in hand at most); $out written, $drained drained" ||
	fail "killed consumer: $miss of $N missing ($out written, $drained drained)"
read -r miss counted out drained < <(kill_run kill1 --ack)
[ "$out" -gt 0 ] && [ "$miss" -le "$counted" ] && [ "$counted" -le 1 ] &&
	pass "killed --ack consumer: $miss missing, $counted counted lost; $out written, $drained drained" ||
	fail "killed --ack consumer: $miss missing but $counted counted ($out written, $drained drained)"

# --- --ack --exec: the slot is given back once the command finished ---------------------------
"$SHMKIT" create queue "$Q.exec" --capacity 16 --max-size 64 --joinable || exit 99
printf 'a\nb\nc\nd\n' | "$SHMKIT" produce "$Q.exec"
timeout 60 "$SHMKIT" consume "$Q.exec" --ack --count 3 --exec sh -c 'cat >>"$0"' "$TMP/exec"
[ "$(cat "$TMP/exec" | tr '\n' ' ')" = "a b c " ] && pass "--ack --exec: every message, in order" ||
	fail "--ack --exec: $(cat "$TMP/exec")"
"$SHMKIT" consume "$Q.exec" --ack --exec sleep 60 &
cons=$!
kids+=($cons)
wait_for 20 pgrep -P $cons sleep >/dev/null
sleeper=$(pgrep -P $cons sleep)
kill -9 $cons
[ -n "$sleeper" ] && kill "$sleeper"
timeout 30 "$SHMKIT" consume --timeout 1 "$Q.exec" >/dev/null
timeout 30 "$SHMKIT" queue join "$Q.exec" --timeout 20 || fail "--ack --exec killed: join waits"
[ "$(stat_field "$Q.exec" "lost to dead consumers")" = 1 ] &&
	pass "--ack --exec killed mid-command: its message counted lost, join returns" ||
	fail "--ack --exec killed: lost to dead consumers $(stat_field "$Q.exec" "lost to dead consumers")"

# --- SIGINT: the --verify summary is printed ---------------------------------------------------
"$SHMKIT" create queue "$Q.sig" --capacity 64 --max-size 64 || exit 99
# An idle writer keeps the queue open after the counted one is done.
sleep 60 | "$SHMKIT" produce "$Q.sig" &
kids+=($!)
wait_for 20 field_is "$Q.sig" "writers attached" 1
"$SHMKIT" produce "$Q.sig" --count 5 --size 32
"$SHMKIT" consume "$Q.sig" --verify >"$TMP/sig" &
cons=$!
wait_for 20 field_is "$Q.sig" "get total" 5
sleep 0.2
kill -INT $cons
wait $cons
rc=$?
[ $rc -eq 130 ] && grep -q "^received 5 from 1 producer" "$TMP/sig" &&
	pass "SIGINT: --verify summary printed, exit 130: $(cat "$TMP/sig")" ||
	fail "SIGINT: exit $rc, summary '$(cat "$TMP/sig")'"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
exit 0
