#!/bin/bash
# tool_verbs_event: Event and Condition verbs from separate shell processes: one `event set`
# releases 5 waiting processes; is-set exits 0/1; clear; a wait times out; `cond notify --all`
# wakes two waiters; a cond wait times out, and one interrupted by SIGINT leaves the Condition
# usable.
. "$(dirname "$0")/tool_verbs.lib.sh"

E=$P.done
C=$P.cond
make_obj event "$E"
make_obj cond "$C"

# --- one set releases five waiters -----------------------------------------------------------
pids=()
for i in 1 2 3 4 5; do
	"$SHMKIT" event wait "$E" --timeout 120 &
	pids+=($!)
done
for pid in "${pids[@]}"; do
	wait_until 30 blocked "$pid" ||
		fail "waiter $pid never blocked"
done
run event is-set "$E"
check "is-set before set exits" "$RC" 1
still=0
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && still=$((still + 1)); done
check "waiters still waiting before the set" "$still" 5
"$SHMKIT" event set "$E" || fail "event set"
bad=0
for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
check "waiters released by one set, failed" "$bad" 0
run event is-set "$E" --json
check "is-set after set" "$RC:$OUT" '0:{"set": true}'
run event wait "$E" --timeout 5
check "a wait on a set event returns at once" "$RC" 0
"$SHMKIT" event clear "$E"
run event is-set "$E"
check "is-set after clear exits" "$RC" 1
run event wait "$E" --timeout 0.2
[ "$RC" -eq 1 ] && [[ "$ERR" == *"timed out"* ]] && pass "a wait times out: $ERR" ||
	fail "event wait timeout: exit $RC, $ERR"

# --- cond notify --all wakes two waiters -----------------------------------------------------
pids=()
for i in 1 2; do
	"$SHMKIT" cond wait "$C" --timeout 60 &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait_until 30 blocked "$pid" || fail "cond waiter never blocked"; done
# A notify reaches only those already waiting: repeat until both have gone (bounded).
i=0
while ! { gone "${pids[0]}" && gone "${pids[1]}"; } && [ $i -lt 200 ]; do
	"$SHMKIT" cond notify "$C" --all || fail "cond notify --all"
	sleep 0.05
	i=$((i + 1))
done
bad=0
for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
check "cond waiters woken by notify --all, failed" "$bad" 0
[ $i -le 2 ] && pass "woken by the first notify --all" ||
	echo "note: the waiters needed $i notifications"

run cond wait "$C" --timeout 0.2
[ "$RC" -eq 1 ] && [[ "$ERR" == *"timed out"* ]] && pass "cond wait times out: $ERR" ||
	fail "cond wait timeout: exit $RC, $ERR"

"$SHMKIT" cond wait "$C" 2>"$TMP/int.err" &
waiter=$!
wait_until 30 blocked "$waiter" || fail "the cond waiter never blocked"
kill -INT "$waiter"
wait "$waiter"
check "a cond wait interrupted by SIGINT exits" "$?" 130
run cond notify "$C" --n 1
check "the Condition's lock is free afterwards (notify)" "$RC:$ERR" "0:"

finish
