#!/bin/bash
# tool_queue: separate producer and consumer processes around named queues through the real
# tool: 2 stamped producers and 3 verifying consumers deliver every message exactly once; stdin
# lines go through whole and in order; a line too long is refused with nothing of it queued;
# stat shows the queue; bad input is refused.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }

Q=/tool-queue-$$
TMP=$(mktemp -d) || exit 99
cleanup() {
	for n in multi lines long stat; do "$SHMKIT" rm "$Q.$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# json_field FILE KEY: a number field of a one-line JSON object.
json_field() { sed -n "s/.*\"$2\": *\(-\{0,1\}[0-9][0-9]*\).*/\1/p" "$1"; }

# --- 2 producers x 3 consumers, writers = 2 -------------------------------------------------
N=20000
if "$SHMKIT" create queue "$Q.multi" --capacity 64 --max-size 128 --writers 2; then
	pids=()
	for c in 1 2 3; do
		timeout 120 "$SHMKIT" consume "$Q.multi" --verify --json >"$TMP/c$c" &
		pids+=($!)
	done
	for p in 1 2; do
		timeout 120 "$SHMKIT" produce "$Q.multi" --count $N --size 100 --json >"$TMP/p$p" &
		pids+=($!)
	done
	bad=0
	for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
	[ $bad -eq 0 ] || fail "multi: $bad of 5 processes failed"
	received=0 sent_digest=0 got_digest=0
	for c in 1 2 3; do
		r=$(json_field "$TMP/c$c" received)
		for k in corrupt out_of_order duplicates; do
			[ "$(json_field "$TMP/c$c" $k)" = 0 ] || fail "multi: consumer $c: $k: $(cat "$TMP/c$c")"
		done
		received=$((received + ${r:-0}))
		got_digest=$((got_digest + $(json_field "$TMP/c$c" digest)))
	done
	for p in 1 2; do
		sent_digest=$((sent_digest + $(json_field "$TMP/p$p" digest)))
	done
	if [ "$received" -eq $((2 * N)) ] && [ "$got_digest" = "$sent_digest" ]; then
		pass "multi: $received messages, each exactly once (digests match)"
	else
		fail "multi: received $received of $((2 * N)), digest $got_digest vs $sent_digest"
	fi
	# A third writer is refused: the queue expected two and both have come and gone.
	if "$SHMKIT" produce "$Q.multi" --count 1 2>"$TMP/err"; then
		fail "a writer beyond --writers was accepted"
	else
		pass "a writer beyond --writers is refused: $(cat "$TMP/err")"
	fi
else
	fail "create queue"
fi

# --- stdin lines, consumer started first ----------------------------------------------------
"$SHMKIT" create queue "$Q.lines" --capacity 4 --max-size 64 || fail "create lines"
timeout 30 "$SHMKIT" consume "$Q.lines" >"$TMP/lines" &
cpid=$!
sleep 0.2
printf 'a\nb\n' | timeout 30 "$SHMKIT" produce "$Q.lines" || fail "produce lines"
if wait $cpid && [ "$(cat "$TMP/lines")" = "$(printf 'a\nb')" ]; then
	pass "stdin lines a, b delivered and the consumer exited at EOF"
else
	fail "lines: got '$(cat "$TMP/lines")'"
fi

# --- a line longer than the maximum: exit 1, nothing of it queued ---------------------------
"$SHMKIT" create queue "$Q.long" --capacity 8 --max-size 8 || fail "create long"
printf 'short\n0123456789abcdef\nafter\n' | "$SHMKIT" produce "$Q.long" 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "maximum" "$TMP/err"; then
	pass "long line refused: $(cat "$TMP/err")"
else
	fail "long line: exit $rc, stderr $(cat "$TMP/err")"
fi
out=$(timeout 30 "$SHMKIT" consume "$Q.long" --timeout 0.3)
[ "$out" = "short" ] && pass "only the line before it was queued" || fail "long: queue held '$out'"

# --- stat and ls show a queue --------------------------------------------------------------
"$SHMKIT" create queue "$Q.stat" --capacity 16 --max-size 32 --writers 3 --joinable || fail "create stat"
printf 'x\ny\n' | "$SHMKIT" produce "$Q.stat" || fail "produce stat"
st=$("$SHMKIT" stat "$Q.stat" --json | tr -d ' ')
for kv in '"depth":2' '"capacity":16' '"max_size":32' '"writers_expected":3' '"unfinished":2'; do
	case "$st" in *"$kv"*) ;; *) fail "stat --json lacks $kv: $st" ;; esac
done
"$SHMKIT" ls | grep -q "${Q#/}.stat.*queue" && pass "ls lists the queue" || fail "ls: $("$SHMKIT" ls)"

# --- bad input ------------------------------------------------------------------------------
"$SHMKIT" produce /tool-queue-missing-$$ --count 1 2>/dev/null
[ $? -eq 1 ] && pass "produce on a missing queue exits 1" || fail "produce missing"
"$SHMKIT" consume "$Q.stat" --timeout abc 2>/dev/null
[ $? -eq 2 ] && pass "consume --timeout abc exits 2" || fail "consume bad timeout"
"$SHMKIT" produce "$Q.stat" --size 3 --count 1 2>/dev/null
[ $? -eq 2 ] && pass "produce --size below the stamp exits 2" || fail "produce small size"
"$SHMKIT" produce 2>/dev/null
[ $? -eq 2 ] && pass "produce without NAME exits 2" || fail "produce no name"
"$SHMKIT" create queue "$Q.bad" --capacity 0 --max-size 8 2>/dev/null
[ $? -eq 2 ] && pass "create queue --capacity 0 exits 2" || fail "capacity 0"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
exit 0
