#!/bin/bash
# tool_large: messages longer than a slot, and longer than the whole queue, through the real
# tool: `create queue --max-size 1G` on a 64-slot queue (K/M/G suffixes, stat and ls show the
# slot size and the largest message); stamped 3 MiB messages from 2 producers to 2 verifying
# consumers, every one once; stdin lines of 3 MB mixed with short ones through produce/consume
# and pipe send/recv, byte for byte; bad sizes refused.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }

Q=/tool-large-$$
TMP=$(mktemp -d) || exit 99
cleanup() {
	for n in q lines pipe bad; do "$SHMKIT" rm "$Q.$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
json_field() { sed -n "s/.*\"$2\": *\(-\{0,1\}[0-9][0-9]*\).*/\1/p" "$1"; }

# --- a small queue for large messages ---------------------------------------------------------
if "$SHMKIT" create queue "$Q.q" --capacity 64 --max-size 1G --writers 2; then
	"$SHMKIT" stat "$Q.q" >"$TMP/stat"
	grep -q '^max message: *1073741824$' "$TMP/stat" && grep -q '^slot size: *4096$' "$TMP/stat" &&
		grep -q '^capacity: *64$' "$TMP/stat" && pass "stat: 64 slots of 4096, messages up to 1G" ||
		{ fail "stat:"; cat "$TMP/stat"; }
	"$SHMKIT" ls -o NAME,CAPACITY,SLOT,MAXMSG --noheadings | grep -q "^$Q.q  *64  *4096  *1073741824$" &&
		pass "ls: SLOT and MAXMSG" || { fail "ls:"; "$SHMKIT" ls -o NAME,CAPACITY,SLOT,MAXMSG; }
	pids=()
	for c in 1 2; do
		timeout 120 "$SHMKIT" consume "$Q.q" --verify --json >"$TMP/c$c" &
		pids+=($!)
	done
	for p in 1 2; do
		timeout 120 "$SHMKIT" produce "$Q.q" --count 10 --size 3M --json >"$TMP/p$p" &
		pids+=($!)
	done
	bad=0
	for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
	[ $bad -eq 0 ] || fail "3 MiB stamped: $bad of 4 processes failed"
	received=0 corrupt=0
	for c in 1 2; do
		received=$((received + $(json_field "$TMP/c$c" received)))
		corrupt=$((corrupt + $(json_field "$TMP/c$c" corrupt) + $(json_field "$TMP/c$c" duplicates)))
	done
	[ $received -eq 20 ] && [ $corrupt -eq 0 ] &&
		pass "2 producers x 10 messages of 3 MiB through 256 KiB: all 20 received, verified" ||
		fail "3 MiB stamped: received $received, corrupt or duplicated $corrupt"
else
	fail "create queue --capacity 64 --max-size 1G"
fi

# --- stdin lines, long and short, byte for byte ---------------------------------------------------
{
	echo short
	head -c 2300000 /dev/urandom | base64 -w0
	echo
	echo ""
	head -c 100000 /dev/urandom | base64 -w0
	echo
	echo last
} >"$TMP/in"
if "$SHMKIT" create queue "$Q.lines" --capacity 16 --max-size 8M --slot-size 1K; then
	timeout 60 "$SHMKIT" produce "$Q.lines" <"$TMP/in" &
	ppid=$!
	timeout 60 "$SHMKIT" consume "$Q.lines" --count 5 >"$TMP/out"
	wait $ppid
	cmp -s "$TMP/in" "$TMP/out" && pass "produce/consume: a 3 MB line through 16 KiB, with short ones" ||
		fail "produce/consume: lines differ"
else
	fail "create queue --slot-size 1K"
fi
if "$SHMKIT" create pipe "$Q.pipe" --capacity 16 --max-size 4M; then
	timeout 60 "$SHMKIT" pipe send "$Q.pipe" --end 0 <"$TMP/in" &
	spid=$!
	timeout 60 "$SHMKIT" pipe recv "$Q.pipe" --end 1 >"$TMP/pout"
	wait $spid
	cmp -s "$TMP/in" "$TMP/pout" && pass "pipe send/recv: the same lines through 64 KiB" ||
		fail "pipe send/recv: lines differ"
else
	fail "create pipe --max-size 4M"
fi

# --- bad sizes --------------------------------------------------------------------------------------
for arg in "--max-size 2G" "--max-size 1.5G" "--max-size 1T" "--max-size 10X" "--slot-size 0" \
	"--slot-size 17M"; do
	# shellcheck disable=SC2086
	"$SHMKIT" create queue "$Q.bad" --capacity 4 $arg >/dev/null 2>"$TMP/err"
	rc=$?
	[ $rc -eq 2 ] && grep -q -- "${arg%% *}" "$TMP/err" && pass "refused: $arg" ||
		fail "create $arg: exit $rc, $(cat "$TMP/err")"
done
"$SHMKIT" create queue "$Q.bad" --capacity 4 --max-size 1K --slot-size 2K >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && pass "refused: a slot larger than the largest message" ||
	fail "slot > max: $(cat "$TMP/err")"
[ -e "/dev/shm$Q.bad" ] && fail "a refused create left $Q.bad"

[ $failures -eq 0 ] && echo "tool_large: all passed"
[ $failures -eq 0 ]
