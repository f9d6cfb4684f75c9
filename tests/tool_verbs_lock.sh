#!/bin/bash
# tool_verbs_lock: `shmkit lock run` from separate shell processes: ten racing read-modify-write
# commands lose nothing under the lock; the command's exit status passes through; a timeout exits
# 1 (or --conflict-exit-code); a holder SIGKILLed hands the lock on, kills its command, and the
# next holder's stderr says the previous one died; a waiter interrupted by SIGINT takes nothing;
# SIGTERM to a holder reaches its command and the lock is released cleanly.
. "$(dirname "$0")/tool_verbs.lib.sh"

L=$P.lock
make_obj lock "$L"

# --- mutual exclusion: a read-modify-write of a file, ten at once ----------------------------
echo 0 >"$TMP/counter"
pids=()
for i in $(seq 10); do
	timeout 120 "$SHMKIT" lock run "$L" -- sh -c \
		'n=$(cat "$1"); sleep 0.05; echo $((n + 1)) >"$1"' sh "$TMP/counter" &
	pids+=($!)
done
bad=0
for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
check "lock run: failed commands" "$bad" 0
check "lock run: counter after ten locked increments" "$(cat "$TMP/counter")" 10

# --- exit status, timeout, conflict code -------------------------------------------------------
run lock run "$L" -- sh -c 'exit 3'
check "the command's exit status passes through" "$RC" 3
run lock run "$L" --timeout 5 sh -c 'echo "$0 $1"' a b
check "a command without '--' and its arguments" "$OUT" "a b"
bg "$SHMKIT" lock run "$L" -- sleep 60
holder=$BG
wait_until 30 sh -c '[ "$("$1" lock holder "$2")" != 0 ]' sh "$SHMKIT" "$L" ||
	fail "the background holder never took the lock"
run lock run "$L" --timeout 0.3 -- true
[ "$RC" -eq 1 ] && [[ "$ERR" == *"timed out"* ]] && pass "a timeout exits 1: $ERR" ||
	fail "timeout: exit $RC, stderr $ERR"
run lock run "$L" --nonblock --conflict-exit-code 75 -- true
check "--conflict-exit-code chooses the timeout's status" "$RC" 75

# --- SIGINT while waiting: nothing taken ------------------------------------------------------
"$SHMKIT" lock run "$L" -- sh -c 'echo ran' >"$TMP/w.out" 2>"$TMP/w.err" &
waiter=$!
wait_until 30 blocked "$waiter" || fail "the waiter never blocked"
kill -INT "$waiter"
wait "$waiter"
rc=$?
check "a waiter interrupted by SIGINT exits" "$rc" 130
grep -q "not taken" "$TMP/w.err" && pass "it says the lock was not taken" ||
	fail "waiter stderr: $(cat "$TMP/w.err")"
[ -s "$TMP/w.out" ] && fail "the interrupted waiter ran its command"

# --- SIGKILL the holder: the lock is handed on ------------------------------------------------
child=$(pgrep -P "$holder" -x sleep)
kill -KILL "$holder"
wait "$holder" 2>/dev/null
run lock run "$L" --timeout 30 -- echo next
check "the next holder runs after a SIGKILLed one" "$RC:$OUT" "0:next"
[[ "$ERR" == *"previous holder died"* ]] && pass "the next holder is told: $ERR" ||
	fail "no 'previous holder died' on stderr: $ERR"
run lock run "$L" --timeout 30 -- sh -c 'echo "$SHMKIT_PREVIOUS_HOLDER_DIED"'
[ -z "$ERR" ] && [ -z "$OUT" ] && pass "the holder after that is told nothing" ||
	fail "a second recovery reported: $ERR / $OUT"
if [ -n "$child" ]; then
	wait_until 10 gone "$child" && pass "the SIGKILLed holder's command was killed too" ||
		fail "the command of a SIGKILLed holder outlived it"
else
	fail "could not find the holder's command"
fi

# --- SIGTERM to a holder reaches the command; the lock is released ---------------------------
"$SHMKIT" lock run "$L" -- sh -c \
	'trap "echo got-term; exit 5" TERM; : >"$0"; while :; do sleep 0.05; done' "$TMP/trapped" \
	>"$TMP/t.out" 2>"$TMP/t.err" &
termed=$!
wait_until 30 test -e "$TMP/trapped" || fail "the SIGTERM holder never started its command"
kill -TERM "$termed"
wait "$termed"
check "SIGTERM to the holder: its command's status" "$?:$(cat "$TMP/t.out")" "5:got-term"
run lock run "$L" --timeout 10 -- true
check "after it, the lock is free and healthy" "$RC:$ERR" "0:"

finish
