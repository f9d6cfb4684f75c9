#!/bin/bash
# tool_verbs_sem: `shmkit sem` from separate shell processes: 20 parallel `sem run` jobs on a
# Semaphore(3) never have more than 3 inside at once (counted with `value add`); acquire and
# release work as separate commands, one process releasing another's unit; a timeout exits 1;
# a bounded semaphore refuses an extra release; an acquire interrupted by SIGINT takes no unit;
# SIGTERM to a `sem run` is passed to its command and the unit is given back.
. "$(dirname "$0")/tool_verbs.lib.sh"

S=$P.three
V=$P.inside
make_obj sem "$S" --init 3
make_obj value "$V"

# --- at most three at once over 20 jobs ------------------------------------------------------
pids=()
for i in $(seq 20); do
	timeout 120 "$SHMKIT" sem run "$S" -- sh -c \
		'n=$("$0" value add "$1" 1) && echo "$n" >>"$2" && sleep 0.1 && "$0" value add "$1" -1 >/dev/null' \
		"$SHMKIT" "$V" "$TMP/inside" &
	pids+=($!)
done
bad=0
for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
check "sem run: failed jobs" "$bad" 0
check "sem run: jobs that ran" "$(wc -l <"$TMP/inside")" 20
most=$(sort -n "$TMP/inside" | tail -1)
[ "$most" -ge 1 ] && [ "$most" -le 3 ] && pass "sem run: highest concurrency $most (at most 3)" ||
	fail "sem run: $most inside at once"
check "sem value after the jobs" "$("$SHMKIT" sem value "$S")" 3
check "value 'inside' after the jobs" "$("$SHMKIT" value get "$V")" 0

# --- acquire / release as separate commands --------------------------------------------------
for i in 1 2 3; do "$SHMKIT" sem acquire "$S" --timeout 10 || fail "acquire $i"; done
check "sem value after three acquires" "$("$SHMKIT" sem value "$S" --json)" '{"value": 0}'
run sem acquire "$S" --timeout 0.2
[ "$RC" -eq 1 ] && [[ "$ERR" == *"timed out"* ]] && pass "a fourth acquire times out: $ERR" ||
	fail "fourth acquire: exit $RC, $ERR"
"$SHMKIT" sem acquire "$S" --timeout 30 >"$TMP/a.out" 2>&1 &
waiter=$!
sleep 0.2
"$SHMKIT" sem release "$S" || fail "release from another process"
wait "$waiter"
check "a blocked acquire is released by another process's release" "$?" 0
check "and took that unit" "$("$SHMKIT" sem value "$S")" 0

# --- SIGINT while waiting: no unit taken -----------------------------------------------------
"$SHMKIT" sem acquire "$S" 2>"$TMP/int.err" &
waiter=$!
wait_until 30 blocked "$waiter" || fail "the waiter never blocked"
kill -INT "$waiter"
wait "$waiter"
check "an acquire interrupted by SIGINT exits" "$?" 130
grep -q "no unit was taken" "$TMP/int.err" && pass "it says no unit was taken" ||
	fail "stderr: $(cat "$TMP/int.err")"
"$SHMKIT" sem release "$S"
check "a release after it is not swallowed by the interrupted waiter" \
	"$("$SHMKIT" sem value "$S")" 1
"$SHMKIT" sem release "$S"
"$SHMKIT" sem release "$S"

# --- sem run: exit status, timeout -----------------------------------------------------------
run sem run "$S" -- sh -c 'exit 7'
check "sem run passes the exit status" "$RC" 7
check "and gives the unit back" "$("$SHMKIT" sem value "$S")" 3

# --- SIGTERM to a `sem run` reaches its command; the unit comes back ------------------------
"$SHMKIT" sem run "$S" -- sh -c 'trap "exit 9" TERM; : >"$0"; while :; do sleep 0.05; done' \
	"$TMP/trapped" &
runner=$!
wait_until 30 test -e "$TMP/trapped" || fail "sem run never started its command"
check "sem run holds a unit while its command runs" "$("$SHMKIT" sem value "$S")" 2
kill -TERM "$runner"
wait "$runner"
check "SIGTERM to sem run: the command's status" "$?" 9
check "and the unit is back" "$("$SHMKIT" sem value "$S")" 3

# --- bounded ---------------------------------------------------------------------------------
make_obj sem "$P.bounded" --init 1 --bounded
run sem release "$P.bounded"
[ "$RC" -eq 1 ] && [[ "$ERR" == *"bounded"* ]] && pass "a bounded release beyond 1 refused: $ERR" ||
	fail "bounded release: exit $RC, $ERR"
check "and the value stays" "$("$SHMKIT" sem value "$P.bounded")" 1

finish
