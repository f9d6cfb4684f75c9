#!/bin/bash
# example_epoll: examples/epoll_queue serves a queue and a timerfd in one epoll loop. Unrelated
# processes (shmkit produce, run after the loop started) put lines; the loop prints each once, in
# order, then "eof" when the writer is done; its timer ticked meanwhile; the queue's descriptor
# socket is gone once the loop exits.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
: "${EXAMPLES:?EXAMPLES must name the built examples directory}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }

Q=/example-epoll-$$
TMP=$(mktemp -d) || exit 99
cleanup() {
	[ -n "${loop:-}" ] && kill "$loop" 2>/dev/null
	"$SHMKIT" rm "$Q" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

"$SHMKIT" create queue "$Q" --capacity 8 --max-size 256 --writers 2 || exit 99
timeout 60 "$EXAMPLES/epoll_queue" "$Q" 20 >"$TMP/out" 2>"$TMP/err" &
loop=$!
sleep 0.5 # the loop is in epoll_wait, its timer ticking
printf 'first\nsecond\n' | "$SHMKIT" produce "$Q" || fail "produce 1"
sleep 0.3
# More lines than the queue holds, from a second unrelated writer: the loop keeps up.
seq 1 50 | "$SHMKIT" produce "$Q" || fail "produce 2"
wait "$loop"
rc=$?
loop=
[ $rc -eq 0 ] || fail "epoll_queue exited $rc: $(cat "$TMP/err")"
{ printf 'msg: first\nmsg: second\n'; seq 1 50 | sed 's/^/msg: /'; echo eof; } >"$TMP/want"
if cmp -s "$TMP/want" "$TMP/out"; then
	pass "every message once, in order, then eof"
else
	fail "output differs: $(diff "$TMP/want" "$TMP/out" | head -5)"
fi
ticks=$(sed -n 's/^ticks: //p' "$TMP/err")
[ "${ticks:-0}" -ge 1 ] && pass "the timer ticked $ticks times in the same loop" ||
	fail "the timer never ticked"
if ls -a /dev/shm | grep -q "^\.shmkit-fd-.*"; then
	# Other tests may run at the same time: only ours matter, and ours is closed.
	ino=$(stat -c %i "/dev/shm/${Q#/}")
	ls -a /dev/shm | grep -q "^\.shmkit-fd-[0-9a-f]*-$(printf %x "$ino")-" &&
		fail "the loop's socket file is left in /dev/shm"
fi
[ $failures -eq 0 ] && pass "done"
exit $((failures > 0))
