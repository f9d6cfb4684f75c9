#!/bin/bash
# tool_verbs_barrier: Barrier verbs from separate shell processes: 4 parties get the arrival
# indices 0..3 each once, twice in a row (the barrier is reusable); abort breaks waiting
# parties (exit 1); reset makes it usable again; a party killed while waiting breaks it for the
# others; a timed-out wait breaks it.
. "$(dirname "$0")/tool_verbs.lib.sh"

B=$P.meet
make_obj barrier "$B" --parties 4

for round in 1 2; do
	pids=()
	for i in 1 2 3 4; do
		timeout 120 "$SHMKIT" barrier wait "$B" >"$TMP/idx$i" &
		pids+=($!)
	done
	bad=0
	for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
	check "round $round: failed parties" "$bad" 0
	check "round $round: arrival indices" "$(cat "$TMP"/idx? | sort -n | tr '\n' ' ')" "0 1 2 3 "
done

# --- abort breaks the waiters; reset repairs -------------------------------------------------
pids=()
for i in 1 2; do
	"$SHMKIT" barrier wait "$B" 2>"$TMP/err$i" &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait_until 30 blocked "$pid" || fail "party never blocked"; done
"$SHMKIT" barrier abort "$B" || fail "abort"
bad=0
for pid in "${pids[@]}"; do wait "$pid" && bad=$((bad + 1)); done
check "waiting parties that did not fail on abort" "$bad" 0
grep -q broken "$TMP/err1" && pass "they say the barrier is broken: $(cat "$TMP/err1")" ||
	fail "abort stderr: $(cat "$TMP/err1")"
run barrier wait "$B" --timeout 5
[ "$RC" -eq 1 ] && [[ "$ERR" == *broken* ]] && pass "a wait on a broken barrier fails at once" ||
	fail "wait on broken: exit $RC, $ERR"
"$SHMKIT" barrier reset "$B" || fail "reset"

# --- a party killed while waiting breaks it ----------------------------------------------------
"$SHMKIT" barrier wait "$B" 2>"$TMP/survivor" &
survivor=$!
"$SHMKIT" barrier wait "$B" &
victim=$!
for pid in $survivor $victim; do wait_until 30 blocked "$pid" || fail "party never blocked"; done
# SIGTERM: a background job of a script ignores SIGINT.
kill -TERM "$victim"
wait "$victim"
check "the interrupted party exits" "$?" 143
wait_until 30 gone "$survivor" || fail "the survivor still waits after a party died"
wait "$survivor"
check "the survivor of a dead party exits" "$?" 1
grep -q broken "$TMP/survivor" && pass "saying the barrier is broken" ||
	fail "survivor stderr: $(cat "$TMP/survivor")"
"$SHMKIT" barrier reset "$B" || fail "reset"

# --- a timed-out wait breaks it; --json ------------------------------------------------------
run barrier wait "$B" --timeout 0.2
[ "$RC" -eq 1 ] && [[ "$ERR" == *"timed out"* ]] && pass "a wait times out: $ERR" ||
	fail "barrier timeout: exit $RC, $ERR"
"$SHMKIT" barrier reset "$B"
make_obj barrier "$P.one" --parties 1
run barrier wait "$P.one" --json
check "barrier wait --json" "$OUT" '{"index": 0, "parties": 1}'

finish
