#!/bin/bash
# tool_verbs_value: Value, Array and Pipe verbs from separate shell processes: four processes
# adding 5000 each lose nothing with the atomic and the locked add; get/set/cas; array
# elements; a pipe carries lines between two processes and the receiver sees EOF when the
# sender exits, and when it is SIGKILLed.
. "$(dirname "$0")/tool_verbs.lib.sh"

V=$P.count
A=$P.cells
make_obj value "$V" --init 0
make_obj array "$A" --size 4

# --- racing adders ---------------------------------------------------------------------------
for how in "" --locked; do
	"$SHMKIT" value set "$V" 0
	pids=()
	for i in 1 2 3 4; do
		timeout 120 "$SHMKIT" value add "$V" 1 --repeat 5000 $how >/dev/null &
		pids+=($!)
	done
	bad=0
	for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
	check "value add ${how:-atomic}: failed" "$bad" 0
	check "value add ${how:-atomic}: 4 x 5000" "$("$SHMKIT" value get "$V")" 20000
done
run value add "$V" 1 --racy --repeat 10
check "value add --racy alone still adds" "$OUT" 20010

# --- get, set, add, cas ----------------------------------------------------------------------
"$SHMKIT" value set "$V" -5
check "value set -5 / get" "$("$SHMKIT" value get "$V")" -5
check "value add -2 prints the result" "$("$SHMKIT" value add "$V" -2)" -7
run value get "$V" --json
check "value get --json" "$OUT" '{"value": -7}'
run value cas "$V" -7 100
check "cas with the right expectation" "$RC:$OUT" "0:100"
run value cas "$V" -7 200
check "cas with a stale expectation (exit 1, prints the value)" "$RC:$OUT" "1:100"

"$SHMKIT" array set "$A" 2 42
"$SHMKIT" array add "$A" 3 -1 >/dev/null
check "array get one element" "$("$SHMKIT" array get "$A" 2)" 42
check "array get all" "$("$SHMKIT" array get "$A" | tr '\n' ' ')" "0 0 42 -1 "
check "array get --json" "$("$SHMKIT" array get "$A" --json)" '{"values": [0, 0, 42, -1]}'
run array get "$A" 4
[ "$RC" -eq 1 ] && [[ "$ERR" == *"past the end"* ]] && pass "index past the end: $ERR" ||
	fail "array index 4: exit $RC, $ERR"
pids=()
for i in 1 2 3; do
	"$SHMKIT" array add "$A" 0 2 --repeat 1000 >/dev/null &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "array add"; done
check "array add from 3 processes" "$("$SHMKIT" array get "$A" 0)" 6000

# --- pipe ------------------------------------------------------------------------------------
make_obj pipe "$P.pipe" --capacity 4 --max-size 64
timeout 60 "$SHMKIT" pipe recv "$P.pipe" --end 1 >"$TMP/recv" &
receiver=$!
seq 1 100 | timeout 60 "$SHMKIT" pipe send "$P.pipe" --end 0 || fail "pipe send"
wait "$receiver"
check "pipe recv exits 0 at EOF when the sender has gone" "$?" 0
check "pipe recv got every line in order" "$(cat "$TMP/recv" | tr '\n' ' ')" "$(seq 1 100 | tr '\n' ' ')"
run pipe send "$P.pipe" --end 0 </dev/null
[ "$RC" -eq 1 ] && [[ "$ERR" == *"not reused"* ]] && pass "an end is not reused: $ERR" ||
	fail "reusing end 0: exit $RC, $ERR"

# A receiver on end 1 of pipe $1 (output in $2) and a sender on end 0 reading the fifo $3,
# which descriptor 3 holds open for writing: sets receiver and sender.
pipe_with_fifo_sender() {
	make_obj pipe "$1" --capacity 4 --max-size 64
	timeout 60 "$SHMKIT" pipe recv "$1" --end 1 >"$2" &
	receiver=$!
	mkfifo "$3"
	"$SHMKIT" pipe send "$1" --end 0 <"$3" &
	sender=$!
	exec 3>"$3"
}

# Two senders on end 0: EOF only once both have gone.
pipe_with_fifo_sender "$P.two" "$TMP/recv3" "$TMP/fifo2"
# The first sender holds end 0 once a line of its own has come through (under load it may
# start after a quick second sender has come and gone, which is EOF, rightly).
echo first >&3
wait_until 30 test -s "$TMP/recv3" || fail "the first sender's line"
seq 1 50 | timeout 60 "$SHMKIT" pipe send "$P.two" --end 0 || fail "second sender"
wait_until 30 test "$(wc -l <"$TMP/recv3")" -eq 51 || fail "the second sender's lines"
sleep 0.3
kill -0 "$receiver" 2>/dev/null && pass "no EOF while another sender holds the end" ||
	fail "recv ended while a sender still held end 0"
echo last >&3
exec 3>&-
wait "$sender"
wait "$receiver"
check "pipe recv exits 0 once both senders have gone" "$?" 0
check "and got all 52 lines" "$(wc -l <"$TMP/recv3")" 52

pipe_with_fifo_sender "$P.kill" "$TMP/recv2" "$TMP/fifo"
echo hello >&3
wait_until 30 test -s "$TMP/recv2" || fail "nothing received before the kill"
kill -KILL "$sender"
wait "$receiver"
check "pipe recv exits 0 at EOF when the sender is SIGKILLed" "$?" 0
check "and printed what was sent" "$(cat "$TMP/recv2")" hello
exec 3>&-

finish
