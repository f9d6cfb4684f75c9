#!/bin/bash
# tool_verbs_pool: a JoinableQueue worker pool from the shell: 3 `consume --exec` workers
# process 1000 messages, each exactly once; `queue join` returns only after the last command
# has finished (the last message's command sleeps before recording itself); the workers exit
# at EOF; a failing command is reported and its message still counts as done.
. "$(dirname "$0")/tool_verbs.lib.sh"

Q=$P.jobs
make_obj queue "$Q" --capacity 64 --max-size 32 --joinable

# The command records its message only when it is about to finish; message 1000 comes last.
cat >"$TMP/work.sh" <<'WORK'
read -r m
[ "$m" = 1000 ] && sleep 1
echo "$m" >>"$1"
WORK
pids=()
for w in 1 2 3; do
	timeout 300 "$SHMKIT" consume "$Q" --json --exec sh "$TMP/work.sh" "$TMP/done" \
		2>"$TMP/worker$w" &
	pids+=($!)
done
seq 1 1000 | timeout 120 "$SHMKIT" produce "$Q" || fail "produce"
run queue join "$Q" --timeout 240
check "queue join" "$RC" 0
check "messages done when join returned" "$(wc -l <"$TMP/done")" 1000
check "each exactly once" "$(sort -n "$TMP/done" | uniq | wc -l)" 1000
check "and none missing" "$(sort -n "$TMP/done" | tr '\n' ' ')" "$(seq 1 1000 | tr '\n' ' ')"
bad=0
for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
check "workers exiting non-zero at EOF" "$bad" 0
total=0
for w in 1 2 3; do
	n=$(sed -n 's/.*"messages": \([0-9]*\).*/\1/p' "$TMP/worker$w")
	echo "worker $w ran ${n:-?} commands"
	total=$((total + ${n:-0}))
done
check "commands run by the pool" "$total" 1000

# --- a failing command ----------------------------------------------------------------------
make_obj queue "$Q.fail" --capacity 4 --max-size 32 --joinable
printf 'good\nbad\n' | "$SHMKIT" produce "$Q.fail"
run consume "$Q.fail" --timeout 2 --exec sh -c 'read -r m; [ "$m" = good ]'
[ "$RC" -eq 1 ] && [[ "$ERR" == *"message 2"*"status 1"* ]] && pass "a failed command: $ERR" ||
	fail "failing command: exit $RC, $ERR"
run queue join "$Q.fail" --timeout 10
check "its message still counts as done (join)" "$RC" 0

# --- join waits while work is outstanding ----------------------------------------------------
make_obj queue "$Q.wait" --capacity 4 --max-size 32 --joinable
echo pending | "$SHMKIT" produce "$Q.wait"
run queue join "$Q.wait" --timeout 0.3
[ "$RC" -eq 1 ] && [[ "$ERR" == *"timed out"* ]] && pass "join with a message outstanding times out" ||
	fail "join outstanding: exit $RC, $ERR"
make_obj queue "$Q.plain" --capacity 4 --max-size 32
run queue join "$Q.plain"
[ "$RC" -eq 1 ] && [[ "$ERR" == *"not a JoinableQueue"* ]] && pass "join on a plain queue: $ERR" ||
	fail "join plain: exit $RC, $ERR"

finish
