#!/bin/bash
# ns_trials: issue 12's reproducers across pid namespaces (unshare --pid --fork standing for a
# container sharing /dev/shm), each turned into a check:
#  - producers in one namespace, a consumer in another, 16 MB messages on a capacity-2 queue:
#    every acknowledged message arrives exactly once, nothing is reclaimed, nobody hangs;
#  - a consumer in a namespace gets all 10 slowly produced lines (no premature EOF);
#  - JoinableQueue join does not return while a consumer in a namespace still works;
#  - a 3-party Barrier with one party in a namespace, arriving first or second, passes;
#  - a Pipe across namespaces (both directions) delivers every message, then EOF;
#  - two processes that are both pid 1 of sibling namespaces on an RLock and a Lock: never
#    held twice, a non-holder's release is EPERM and changes nothing, a non-holder's try is
#    EAGAIN (not EDEADLK), and 2 x 3000 contended rounds never find the lock occupied;
#  - a producer SIGKILLed in a namespace without its own /proc is reaped: EOF comes.
# Root and a kernel that allows pid namespaces are needed: otherwise exit 77 (skipped).
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
: "${NSHELP:?NSHELP must name the built tests/nshelp}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: pid namespaces need root here"; exit 77; }
unshare --pid --fork --mount-proc true 2>/dev/null ||
	{ echo "SKIP: unshare --pid --fork --mount-proc refused"; exit 77; }

N=/ns-trial-$$
TMP=$(mktemp -d) || exit 99
NAMES="big lines jq barfirst barsecond pipe pipe2 rlock lock lockv rlockv dead"
cleanup() {
	for n in $NAMES; do "$SHMKIT" rm "$N.$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
json_field() { sed -n "s/.*\"$2\": *\(-\{0,1\}[0-9][0-9]*\).*/\1/p" "$1"; }
# ns CMD...: run CMD as pid 1 of a new pid namespace with its own /proc (a container).
ns() { timeout 200 unshare --pid --fork --mount-proc --kill-child "$@"; }
export SHMKIT NSHELP TMP N

# --- 16 MB messages, capacity 2, producers and consumer in different namespaces -------------
P=12
BIG=16777216
if "$SHMKIT" create queue "$N.big" --capacity 2 --max-size $BIG --writers $P; then
	ns "$SHMKIT" consume "$N.big" --verify --json >"$TMP/big.c" 2>"$TMP/big.cerr" &
	cpid=$!
	P=$P BIG=$BIG ns sh -c '
		for i in $(seq $P); do
			timeout 180 "$SHMKIT" produce "$N.big" --count 1 --size $BIG --json \
				>"$TMP/big.p$i" 2>"$TMP/big.perr$i" &
		done
		wait'
	wait $cpid
	crc=$?
	acked=0 sent_digest=0
	for i in $(seq $P); do
		if [ "$(json_field "$TMP/big.p$i" sent)" = 1 ]; then
			acked=$((acked + 1))
			sent_digest=$((sent_digest + $(json_field "$TMP/big.p$i" digest)))
		else
			fail "big: producer $i: $(cat "$TMP/big.perr$i")"
		fi
	done
	got=$(json_field "$TMP/big.c" received)
	got_digest=$(json_field "$TMP/big.c" digest)
	reclaimed=$("$SHMKIT" stat --json "$N.big" | sed -n 's/.*"slots_reclaimed":\([0-9]*\).*/\1/p')
	if [ $crc -eq 0 ] && [ $acked = $P ] && [ "${got:-x}" = $acked ] && [ "$got_digest" = "$sent_digest" ] &&
		[ "$reclaimed" = 0 ] && [ "$(json_field "$TMP/big.c" duplicates)" = 0 ]; then
		pass "big: all $P 16 MB puts acknowledged, each arrived once, 0 reclaimed, EOF"
	else
		fail "big: consumer exit $crc, acked $acked, received ${got:-?}, reclaimed $reclaimed," \
			"digests $got_digest vs $sent_digest; $(cat "$TMP/big.c" "$TMP/big.cerr")"
	fi
else
	fail "create big"
fi
"$SHMKIT" rm "$N.big" >/dev/null 2>&1

# --- premature EOF: a consumer in a namespace, lines produced slowly from outside ------------
"$SHMKIT" create queue "$N.lines" --capacity 16 --max-size 64 || fail "create lines"
ns "$SHMKIT" consume "$N.lines" --timeout 10 >"$TMP/lines" &
cpid=$!
sleep 0.3
(for i in $(seq 10); do echo line$i; sleep .3; done) | timeout 60 "$SHMKIT" produce "$N.lines" ||
	fail "lines: produce failed"
wait $cpid
crc=$?
if [ $crc -eq 0 ] && [ "$(cat "$TMP/lines")" = "$(seq -f 'line%g' 10)" ]; then
	pass "lines: the namespaced consumer got all 10 lines in order, then EOF"
else
	fail "lines: consumer exit $crc, got: $(tr '\n' ' ' <"$TMP/lines")"
fi

# --- JoinableQueue: join waits for the namespaced consumer ----------------------------------
"$SHMKIT" create queue "$N.jq" --capacity 16 --max-size 64 --joinable || fail "create jq"
printf 'a\nb\nc\nd\ne\n' | "$SHMKIT" produce "$N.jq" || fail "jq: produce"
ns "$NSHELP" jq-work "$N.jq" 5 200 "$TMP/jq.last" >"$TMP/jq.w" &
wpid=$!
sleep 0.2
timeout 60 "$NSHELP" jq-join "$N.jq" 30000 "$TMP/jq.last" >"$TMP/jq.j"
wait $wpid
if [ "$(cat "$TMP/jq.j")" = "join 0 last=1" ] && [ "$(cat "$TMP/jq.w")" = "done 5" ]; then
	pass "jq: join returned only after the namespaced consumer's last task_done"
else
	fail "jq: joiner said '$(cat "$TMP/jq.j")', worker said '$(cat "$TMP/jq.w")'"
fi

# --- Barrier: 3 parties, one in a namespace: first, then second ------------------------------
# bar_round first|second: the namespaced party arrives first (and waits alone for 2.5 s) or
# second (and waits 2.5 s with an outside party); all three must pass with indexes 0, 1, 2.
bar_round() {
	local name=$N.bar$1 b0 b1
	"$SHMKIT" create barrier "$name" --parties 3 || fail "create $name"
	if [ "$1" = first ]; then
		ns "$NSHELP" barrier "$name" 30000 >"$TMP/bar.0" &
		b0=$!
		sleep 2.5 # longer than a sleeper's 1 s slice: it has looked for dead parties
		timeout 60 "$NSHELP" barrier "$name" 30000 >"$TMP/bar.1" &
		b1=$!
		timeout 60 "$NSHELP" barrier "$name" 30000 >"$TMP/bar.2"
	else
		timeout 60 "$NSHELP" barrier "$name" 30000 >"$TMP/bar.1" &
		b1=$!
		sleep 0.5
		ns "$NSHELP" barrier "$name" 30000 >"$TMP/bar.0" &
		b0=$!
		sleep 2.5 # both wait together, each looking at the other
		timeout 60 "$NSHELP" barrier "$name" 30000 >"$TMP/bar.2"
	fi
	wait $b0 $b1
	idx=$(cat "$TMP/bar.0" "$TMP/bar.1" "$TMP/bar.2" | sed -n 's/^wait //p' | sort | tr '\n' ' ')
	if [ "$idx" = "0 1 2 " ]; then
		pass "barrier: 3 parties, the namespaced one arriving $1, passed: indexes 0 1 2"
	else
		fail "barrier, the namespaced party $1: results '$idx'"
	fi
}
bar_round first
bar_round second

# --- Pipe across namespaces, each direction --------------------------------------------------
"$SHMKIT" create pipe "$N.pipe" --capacity 4 --max-size 64 || fail "create pipe"
ns "$NSHELP" pipe-recv "$N.pipe" 1 20000 >"$TMP/pipe.r" &
rpid=$!
sleep 0.3
timeout 60 "$NSHELP" pipe-send "$N.pipe" 0 10 300 >"$TMP/pipe.s"
wait $rpid
"$SHMKIT" create pipe "$N.pipe2" --capacity 4 --max-size 64 || fail "create pipe2"
timeout 60 "$NSHELP" pipe-recv "$N.pipe2" 0 20000 >"$TMP/pipe2.r" &
rpid=$!
sleep 0.3
ns "$NSHELP" pipe-send "$N.pipe2" 1 10 300 >"$TMP/pipe2.s"
wait $rpid
if [ "$(cat "$TMP/pipe.r")" = "recv 10 EPIPE" ] && [ "$(cat "$TMP/pipe2.r")" = "recv 10 EPIPE" ]; then
	pass "pipe: 10 messages 0.3 s apart each way across namespaces, then EOF"
else
	fail "pipe: into the namespace '$(cat "$TMP/pipe.r")', out of it '$(cat "$TMP/pipe2.r")'"
fi

# --- two pid 1s on an RLock and a Lock -------------------------------------------------------
# pid1 FILE STEPS...: nshelp lock as pid 1 of a new namespace; its first line says its pid.
pid1() {
	local out=$1
	shift
	ns sh -c 'echo "pid $$"; exec "$NSHELP" lock "$@"' sh "$@" >"$out"
}
lines() { tr '\n' ',' <"$1"; }
"$SHMKIT" create rlock "$N.rlock" || fail "create rlock"
pid1 "$TMP/r.a" "$N.rlock" acq acq touch:"$TMP/r.held" wait:"$TMP/r.tried" rel rel rel &
apid=$!
pid1 "$TMP/r.b" "$N.rlock" wait:"$TMP/r.held" try rel tmo:300 touch:"$TMP/r.tried"
wait $apid
after=$(timeout 30 "$NSHELP" lock "$N.rlock" try rel | tr '\n' ',')
if [ "$(lines "$TMP/r.a")" = "pid 1,acq 0,acq 0,rel 0,rel 0,rel EPERM," ] &&
	[ "$(lines "$TMP/r.b")" = "pid 1,try EAGAIN,rel EPERM,tmo ETIMEDOUT," ] &&
	[ "$after" = "try 0,rel 0," ]; then
	pass "rlock: the other pid 1 is refused (EAGAIN, EPERM on release), the holder's depth 2 intact"
else
	fail "rlock: holder '$(lines "$TMP/r.a")', other '$(lines "$TMP/r.b")', after '$after'"
fi

"$SHMKIT" create lock "$N.lock" || fail "create lock"
pid1 "$TMP/l.a" "$N.lock" acq touch:"$TMP/l.held" wait:"$TMP/l.tried" rel rel \
	touch:"$TMP/l.freed" &
apid=$!
pid1 "$TMP/l.b" "$N.lock" wait:"$TMP/l.held" try rel tmo:300 touch:"$TMP/l.tried" \
	wait:"$TMP/l.freed" acq rel
wait $apid
if [ "$(lines "$TMP/l.a")" = "pid 1,acq 0,rel 0,rel EPERM," ] &&
	[ "$(lines "$TMP/l.b")" = "pid 1,try EAGAIN,rel EPERM,tmo ETIMEDOUT,acq 0,rel 0," ]; then
	pass "lock: the other pid 1 gets EAGAIN (not EDEADLK), EPERM on release, the lock once freed"
else
	fail "lock: holder '$(lines "$TMP/l.a")', other '$(lines "$TMP/l.b")'"
fi

# Both pid 1s contend: nobody ever finds the lock occupied.
for k in lock rlock; do
	"$SHMKIT" create value "$N.${k}v" || fail "create ${k}v"
	for who in a b; do
		ns sh -c 'echo "pid $$"; exec "$NSHELP" lockloop "$@"' sh \
			"$N.$k" "$N.${k}v" 3000 >"$TMP/loop.$k.$who" &
	done
	wait
	if [ "$(lines "$TMP/loop.$k.a")" = "pid 1,rounds 3000 violations 0 owner_died 0," ] &&
		[ "$(lines "$TMP/loop.$k.b")" = "pid 1,rounds 3000 violations 0 owner_died 0," ]; then
		pass "$k: two pid 1s, 2 x 3000 contended rounds, never held twice"
	else
		fail "$k contended: '$(lines "$TMP/loop.$k.a")' '$(lines "$TMP/loop.$k.b")'"
	fi
done

# --- a producer SIGKILLed in a namespace without its own /proc is reaped ---------------------
"$SHMKIT" create queue "$N.dead" --capacity 4 --max-size 64 || fail "create dead"
timeout 60 "$SHMKIT" consume "$N.dead" >"$TMP/dead" &
cpid=$!
unshare --pid --fork timeout 60 sh -c '
	( echo hi; sleep 60 ) | "$SHMKIT" produce "$N.dead" &
	p=$!
	sleep 1
	kill -KILL $p' || fail "dead: the namespace's script failed"
t0=$(date +%s)
wait $cpid
crc=$?
t1=$(date +%s)
if [ $crc -eq 0 ] && [ "$(cat "$TMP/dead")" = hi ]; then
	pass "dead: the killed producer (no /proc of its own) was reaped: EOF after $((t1 - t0)) s"
else
	fail "dead: consumer exit $crc (124: no EOF in 60 s), got '$(cat "$TMP/dead")'"
fi

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
exit 0
