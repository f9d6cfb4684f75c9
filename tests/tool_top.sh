#!/bin/bash
# tool_top: `shmkit top` under a real terminal (a tmux pane): it draws the objects with a
# blocked producer counted in PWAIT, a key re-sorts the view, `q` quits with status 0 and the
# terminal restored; --once and --json print one refresh for scripts; bad input is refused.
# Skipped (77) without tmux.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed"; exit 77; }

P=/tool-top-$$
TMP=$(mktemp -d) || exit 99
SOCK="shmkit-top-test-$$" # a tmux server of our own, never the user's
producer=
cleanup() {
	tmux -L "$SOCK" kill-server >/dev/null 2>&1
	[ -n "$producer" ] && kill "$producer" 2>/dev/null && wait "$producer" 2>/dev/null
	for n in a b; do "$SHMKIT" rm "$P.$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
pane() { tmux -L "$SOCK" capture-pane -p -t top 2>/dev/null; }
# wait_for PATTERN: until the pane shows PATTERN (generous: the machine is shared).
wait_for() {
	for _ in $(seq 300); do
		pane | grep -q -- "$1" && return 0
		sleep 0.1
	done
	return 1
}

"$SHMKIT" create queue "$P.a" --capacity 4 --max-size 16 &&
	"$SHMKIT" create queue "$P.b" --capacity 8 --max-size 16 || { echo "FAIL: create"; exit 1; }
printf 'x\nx\nx\n' | "$SHMKIT" produce "$P.b" || exit 1
yes | "$SHMKIT" produce "$P.a" & # fills a, then blocks; killed by cleanup
producer=$!

# --- the live view under tmux -------------------------------------------------------------
tmux -L "$SOCK" -f /dev/null new-session -d -s top -x 160 -y 30 \
	"'$SHMKIT' top --interval 0.2 '$P.a' '$P.b'; echo \"top exited \$?\" >'$TMP/exit'; sleep 30"
if wait_for "PWAIT"; then
	pass "top draws its table in a terminal"
else
	fail "no table: $(pane)"
fi
wait_for "^$P.a  *queue .* 4  *4  *1  *0 " && pass "queue a: depth 4 of 4, 1 producer waiting" ||
	fail "row a: $(pane)"
wait_for "^$P.b  *queue .* 3  *8 " || fail "row b: $(pane)"
# Sorted by name: a above b. Sort by depth: b has 3, a has 4, so a stays first; reversed, b first.
tmux -L "$SOCK" send-keys -t top d
wait_for "sorted by depth" && pass "key d sorts by depth" || fail "sort key: $(pane)"
tmux -L "$SOCK" send-keys -t top r
if wait_for "sorted by depth (reversed)"; then
	first=$(pane | grep -m1 "^$P\." | awk '{print $1}')
	[ "$first" = "$P.b" ] && pass "r reverses: the shallower queue first" ||
		fail "reversed order: $(pane)"
else
	fail "r: $(pane)"
fi
tmux -L "$SOCK" send-keys -t top q
for _ in $(seq 100); do [ -s "$TMP/exit" ] && break; sleep 0.1; done
[ "$(cat "$TMP/exit" 2>/dev/null)" = "top exited 0" ] && pass "q quits with status 0" ||
	fail "after q: $(cat "$TMP/exit" 2>/dev/null) $(pane)"
# The alternate screen is gone: the pane shows the shell's line, not the table.
pane | grep -q "PWAIT" && fail "the table is still on the screen after q"

# --- for scripts ------------------------------------------------------------------------------
OUT=$(timeout 30 "$SHMKIT" top --once --interval 0.1 "$P.a")
printf '%s\n' "$OUT" | grep -q "^$P.a  *queue " && [[ "$OUT" != *$'\033'* ]] &&
	pass "--once: one plain table" || fail "--once: $OUT"
OUT=$(timeout 30 "$SHMKIT" top --once --json --interval 0.1 "$P.a")
[[ "$OUT" == '{"time":'*'"objects":[{"name":"'"$P.a"'","kind":"queue",'*'"depth":4,"capacity":4,"producers_waiting":1,'* ]] &&
	pass "--once --json" || fail "--json: $OUT"
OUT=$(timeout 30 "$SHMKIT" top --json --iterations 3 --interval 0.1 "$P.b")
[ "$(printf '%s\n' "$OUT" | grep -c '^{"time"')" = 3 ] || fail "--iterations 3: $OUT"

# --- bad input ---------------------------------------------------------------------------------
"$SHMKIT" top --interval 0 2>/dev/null; [ $? -eq 2 ] || fail "--interval 0 accepted"
"$SHMKIT" top --sort bogus 2>/dev/null; [ $? -eq 2 ] || fail "--sort bogus accepted"
"$SHMKIT" top bad-name 2>/dev/null; [ $? -eq 2 ] || fail "a bad name accepted"

[ $failures -eq 0 ] || exit 1
