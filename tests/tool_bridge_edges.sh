#!/bin/bash
# tool_bridge_edges: the bridge at its edges (issue 23), on loopback, each case killing at an
# exact moment (SHMKIT_BRIDGE_KILL_AT=POINT[@N]: the process SIGKILLs itself there) or going
# through tests/bridge_peer.py (a TCP proxy that cuts and slows the link; a raw ZeroMQ peer):
#  E1  a receiver killed after acknowledging the last EOF, or after handing the keeper its leave
#      marker, is restarted and finishes the end; a receiver started on a finished far queue
#      exits 1 and makes nothing
#  E2  a sender killed with its window unacknowledged, restarted (and killed again right after
#      its welcome) when its source has nothing more: no EOF livelock, and delivered + counted
#      lost == produced, exactly (the receiver decides where it resumes, once); the same with
#      the receiver killed in the middle of that decision
#  E4  the keeper killed holding a message, after putting it, after recording it; and with the
#      receiver dead too: the stream goes on, delivered + counted lost == produced
#  E5  EOF acknowledgement lost in an outage longer than the receiver's linger: the sender
#      gives up after --connect-timeout, exit 1, state kept
#  E6  a 20 kB/s link: no resends on a live connection; a cut: resends, counted
#  E7  a 256 MiB frame is refused by ZeroMQ (the cap); 1000 bad frames make a few lines
#  E8  CURVE mismatches are reported as what they are, on both sides
#  E9  a sender that said hello and vanished: `bridge senders` shows it, `bridge forget` ends
#      the wait
# Every process started is killed and every name removed at the end, also on failure.
# Skips (77) without shmkit-bridge or python3.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
[ -x "${SHMKIT_BRIDGE:-}" ] || { echo "SKIP: built without libzmq (no shmkit-bridge)"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3 for the proxy"; exit 77; }
PEER="python3 $(dirname "$0")/bridge_peer.py"

Q=/tbe-$$
TMP=$(mktemp -d) || exit 99
PORT=$((20000 + ($$ * 7) % 30000))
declare -a PIDS=()
# Every process of ours: those started here, and any whose command line names our queues (the
# keepers the receivers start).
cleanup() {
	trap "" INT TERM HUP # a second signal must not cut the cleaning short
	local p n
	for p in "${PIDS[@]}" $(ps -eo pid=,args= | grep -F -- "$Q." | grep -v grep | awk '{print $1}'); do
		kill -9 "$p" 2>/dev/null
	done
	sleep 0.2
	for n in $(ls /dev/shm 2>/dev/null | grep "^${Q#/}\."); do "$SHMKIT" rm "/$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
json_field() { sed -n "s/.*\"$2\": *\(-\{0,1\}[0-9][0-9]*\).*/\1/p" "$1" | tail -1; }
stat_field() { "$SHMKIT" stat "$1" | sed -n "s/^$2: *//p"; }
await() { # PID SECONDS: its exit status, or 124 after killing it
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1"; return; }
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}
left() { ls /dev/shm | grep "^${Q#/}\.$1\.far\.bridge" | tr '\n' ' '; }
mk() { # CASE [far writers]
	"$SHMKIT" create queue "$Q.$1.src" --capacity 64 --max-size 128 &&
		"$SHMKIT" create queue "$Q.$1.far" --capacity 64 --max-size 128 --writers "${2:-1}"
}
ep() { echo "tcp://127.0.0.1:$((PORT + $1))"; }
# recv CASE PORTOFF [ENV...]: a receiving bridge, its pid in RECV
recv() {
	local c=$1 p=$2
	shift 2
	env "$@" "$SHMKIT_BRIDGE" recv "$(ep "$p")" "$Q.$c.far" >>"$TMP/$c.recv" 2>>"$TMP/$c.recv.err" &
	RECV=$!
	PIDS+=($RECV)
}
# send CASE PORTOFF [ENV...] -- [OPTIONS]: a send bridge, its pid in SEND
send() {
	local c=$1 p=$2 envs=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	env "${envs[@]}" "$SHMKIT_BRIDGE" send "$Q.$c.src" "$(ep "$p")" --resend 0.5 \
		--connect-timeout 0 --json "$@" >>"$TMP/$c.send" 2>>"$TMP/$c.send.err" &
	SEND=$!
	PIDS+=($SEND)
}
consume() { timeout 120 "$SHMKIT" consume "$Q.$1.far" --verify --json >"$TMP/$1.cons" & CONS=$!; PIDS+=($CONS); }
produce() { timeout 120 "$SHMKIT" produce "$Q.$1.src" --count "$2" --size 64 --json >"$TMP/$1.prod" & PROD=$!; PIDS+=($PROD); }
proxy() { # LISTEN TARGET [RATE]: the proxy, its pid in PROXY, once it listens
	local i
	: >"$TMP/proxy"
	$PEER proxy "$@" >"$TMP/proxy" 2>&1 & PROXY=$!; PIDS+=($PROXY)
	for ((i = 0; i < 100; i++)); do
		grep -q ready "$TMP/proxy" && return
		sleep 0.1
	done
	fail "the proxy did not start: $(cat "$TMP/proxy")"
}
clean_consumer() { # CASE: no corruption, order or duplicates
	local k
	for k in corrupt out_of_order duplicates; do
		[ "$(json_field "$TMP/$1.cons" $k)" = 0 ] || return 1
	done
}

# --- E1 ----------------------------------------------------------------------------------------
for point in eof-acked leave-staged; do
	c=e1$point
	c=${c//-/}
	mk $c || { fail "$c: create"; continue; }
	consume $c
	recv $c 1 SHMKIT_BRIDGE_KILL_AT=$point
	send $c 1
	produce $c 1000
	await $RECV 60
	rc=$?
	[ $rc = 137 ] || fail "$c: the receiver was not killed at $point (exit $rc)"
	await $SEND 3 >/dev/null # it may have its EOF acknowledged; then it has exited
	kill -9 $SEND 2>/dev/null # in any case: the senders are gone when the receiver comes back
	recv $c 1
	await $RECV 30
	rc=$?
	await $CONS 10
	got=$(json_field "$TMP/$c.cons" received)
	if [ $rc = 0 ] && [ "$got" = 1000 ] && clean_consumer $c && [ -z "$(left $c)" ]; then
		pass "$c: receiver killed at $point, restarted with no sender left: it ends (exit 0), the far consumer gets all 1000 and EOF, nothing left"
	else
		fail "$c: restart exit $rc, consumer got ${got:-none}, left: $(left $c) ($(cat "$TMP/$c.recv.err"))"
	fi
	"$SHMKIT" rm "$Q.$c.src.bridge-s" >/dev/null 2>&1
done
# A receiver on the far queue whose stream has ended.
c=e1leaveStaged
c=e1leavestaged
timeout 20 "$SHMKIT_BRIDGE" recv "$(ep 1)" "$Q.$c.far" 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && grep -q "closed for writing" "$TMP/err" && [ -z "$(left $c)" ] &&
	pass "a receiver on a finished far queue: exit 1, nothing made: $(cat "$TMP/err")" ||
	fail "a receiver on a finished far queue: exit $rc, left $(left $c): $(cat "$TMP/err")"

# --- E2 ----------------------------------------------------------------------------------------
# N fits in far (64) + staging (1023) + the window (64): all taken, the source at EOF and empty
# when the sender dies with its window unacknowledged (the far consumer not started yet).
N=1100
# inflight: only the sender killed, its frames still queued at the receiver when its successor
# says hello (they are dropped or delivered, and counted accordingly); sender: both bridges
# killed (a real loss); receiver: that, and the receiver killed inside the skip.
for variant in inflight sender receiver; do
	c=e2$variant
	mk $c || { fail "$c: create"; continue; }
	recv $c 2
	send $c 2 -- --window 64
	produce $c $N
	await $PROD 30 || fail "$c: producer"
	sleep 1.5
	# Both bridges killed: what the receiver had read of the window dies with it.
	if [ $variant = inflight ]; then
		kill -9 $SEND; wait $SEND 2>/dev/null
	else
		kill -9 $SEND $RECV; wait $SEND $RECV 2>/dev/null
	fi
	if [ $variant = inflight ]; then
		:
	elif [ $variant = receiver ]; then
		recv $c 2 SHMKIT_BRIDGE_KILL_AT=skip-moved # between moving the sender on and the count
	else
		recv $c 2
	fi
	# Restarted: killed right after its welcome (the loss counted), then again for good.
	send $c 2 SHMKIT_BRIDGE_KILL_AT=welcomed -- --window 64
	# inflight: the receiver, blocked on full staging, answers only once the far queue drains
	[ $variant = inflight ] && consume $c
	if [ $variant = receiver ]; then
		await $RECV 10
		[ $? = 137 ] || fail "$c: the receiver was not killed in the skip"
		recv $c 2
	fi
	await $SEND 30
	[ $? = 137 ] || fail "$c: the sender was not killed after its welcome"
	send $c 2 -- --window 64
	[ $variant = inflight ] || consume $c
	await $SEND 60; src=$?
	await $RECV 60; rrc=$?
	await $CONS 30
	got=$(json_field "$TMP/$c.cons" received)
	lost=$(stat_field "$Q.$c.src" "lost to dead consumers")
	if [ $src = 0 ] && [ $rrc = 0 ] && clean_consumer $c && [ -n "$got" ] && [ -n "$lost" ] &&
		[ $((got + lost)) = $N ] && [ "$lost" -le 64 ] &&
		{ [ $variant = inflight ] || [ "$lost" -ge 1 ]; }; then
		pass "$c: sender killed with its window unacknowledged, restarted twice: $got delivered + $lost counted lost = $N, each once; both bridges ended"
	else
		fail "$c: send exit $src, recv exit $rrc, delivered ${got:-?} + lost ${lost:-?} vs $N ($(cat "$TMP/$c.send.err" "$TMP/$c.recv.err"))"
	fi
done

# --- E4 ----------------------------------------------------------------------------------------
N=20000
for point in keeper-hand keeper-put keeper-kept; do
	c=e4${point#keeper-}
	mk $c 0 || { fail "$c: create"; continue; }
	consume $c
	recv $c 4 SHMKIT_BRIDGE_KILL_AT=$point@3000
	send $c 4
	produce $c $N
	await $SEND 120; src=$?
	await $RECV 60; rrc=$?
	await $CONS 30
	got=$(json_field "$TMP/$c.cons" received)
	lost=$(stat_field "$Q.$c.far" "lost to dead consumers")
	want=$N
	[ $point = keeper-put ] && want=$((N + 1)) # delivered, then killed before its record: counted too
	if [ $src = 0 ] && [ $rrc = 0 ] && clean_consumer $c && [ -n "$got" ] &&
		[ $((got + lost)) = $want ] && grep -q "keeper of .* died" "$TMP/$c.recv.err"; then
		pass "$c: keeper killed at $point: replaced, $got delivered + $lost counted lost in the far queue's stats (= $want)"
	else
		fail "$c: send $src recv $rrc, delivered ${got:-?} + lost ${lost:-?} vs $want ($(cat "$TMP/$c.recv.err"))"
	fi
done
# Keeper and receiver both killed with staging full: the next receiver carries on. The far
# queue made for two writers: the keeper and its one successor (then EOF).
c=e4both N=3000
if mk $c 2; then
	recv $c 5
	send $c 5
	produce $c $N
	sleep 2
	keeper=$("$SHMKIT" stat "$Q.$c.far.bridge-l" 2>/dev/null |
		sed -n 's/^lock holder: *\(pid \)\{0,1\}\([0-9][0-9]*\).*/\2/p')
	kill -9 $keeper $RECV
	await $RECV 5
	recv $c 5
	consume $c
	await $SEND 60; src=$?
	await $RECV 60; rrc=$?
	await $CONS 30
	got=$(json_field "$TMP/$c.cons" received)
	lost=$(stat_field "$Q.$c.far" "lost to dead consumers")
	if [ -n "$keeper" ] && [ $src = 0 ] && [ $rrc = 0 ] && clean_consumer $c && [ -n "$got" ] &&
		[ $((got + lost)) = $N ]; then
		pass "$c: keeper and receiver both killed, staging full: the next receiver carried on, $got delivered + $lost lost = $N"
	else
		fail "$c: keeper ${keeper:-not found}, send $src recv $rrc, delivered ${got:-?} + lost ${lost:-?} vs $N ($(cat "$TMP/$c.recv.err"))"
	fi
else
	fail "$c: create"
fi

# --- E5 ----------------------------------------------------------------------------------------
c=e5
if mk $c; then
	proxy $((PORT + 50)) $((PORT + 6))
	consume $c
	recv $c 6 SHMKIT_BRIDGE_KILL_AT=eof-recorded # EOF recorded, never acknowledged
	send $c 50 -- --connect-timeout 3
	produce $c 100
	await $RECV 30
	kill -USR1 $PROXY # an outage from now on
	recv $c 6 # finds every EOF recorded: ends after its linger
	await $RECV 20; rrc=$?
	kill -USR2 $PROXY
	await $SEND 30; src=$?
	await $CONS 10
	if [ $rrc = 0 ] && [ $src = 1 ] && grep -q "EOF was not" "$TMP/$c.send.err" &&
		[ -n "$(ls /dev/shm | grep "^${Q#/}\.$c\.src\.bridge-s")" ]; then
		pass "$c: EOF acknowledgement lost beyond the receiver's end: the sender gave up (exit 1), state kept: $(tail -1 "$TMP/$c.send.err")"
	else
		fail "$c: recv $rrc, send $src: $(cat "$TMP/$c.send.err")"
	fi
	kill -9 $PROXY 2>/dev/null
else
	fail "$c: create"
fi

# --- E6 ----------------------------------------------------------------------------------------
c=e6slow N=1500
if mk $c; then
	proxy $((PORT + 51)) $((PORT + 7)) 20000
	consume $c
	recv $c 7
	send $c 51
	produce $c $N
	await $SEND 120; src=$?
	await $RECV 30; rrc=$?
	await $CONS 10
	resent=$(json_field "$TMP/$c.send" resent)
	got=$(json_field "$TMP/$c.cons" received)
	[ $src = 0 ] && [ "$got" = $N ] && clean_consumer $c && [ "$resent" = 0 ] &&
		pass "$c: 20 kB/s link, --resend 0.5: $N delivered, none resent" ||
		fail "$c: send $src, got ${got:-?}, resent ${resent:-?}"
	kill -9 $PROXY 2>/dev/null
else
	fail "$c: create"
fi
# At 2 MB/s the stream takes seconds whatever the machine: the cut falls in its middle.
c=e6cut N=100000
if mk $c; then
	proxy $((PORT + 52)) $((PORT + 8)) 2000000
	consume $c
	recv $c 8
	send $c 52
	produce $c $N
	for ((i = 0; i < 100; i++)); do # until the stream flows
		[ "$(json_field "$TMP/$c.cons" received 2>/dev/null)" ] && break
		[ "$(stat_field "$Q.$c.far" "put total")" -gt 1000 ] 2>/dev/null && break
		sleep 0.1
	done
	kill -USR1 $PROXY; sleep 1; kill -USR2 $PROXY
	await $SEND 120; src=$?
	await $RECV 30
	await $CONS 10
	resent=$(json_field "$TMP/$c.send" resent)
	sent=$(json_field "$TMP/$c.send" sent)
	got=$(json_field "$TMP/$c.cons" received)
	[ $src = 0 ] && [ "$got" = $N ] && clean_consumer $c && [ "${resent:-0}" -gt 0 ] && [ "$sent" = $N ] &&
		pass "$c: a cut mid-stream: $N delivered once each; $resent resends counted apart from the $sent sent" ||
		fail "$c: send $src, got ${got:-?}, sent ${sent:-?}, resent ${resent:-?}"
	kill -9 $PROXY 2>/dev/null
else
	fail "$c: create"
fi

# --- E7 ----------------------------------------------------------------------------------------
c=e7
if mk $c; then
	recv $c 9
	sleep 0.5
	took=$(timeout 60 $PEER bigframe $((PORT + 9)) $((256 << 20)) $((64 << 20)))
	rss=$(sed -n "s/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p" /proc/$RECV/status)
	[ -n "$took" ] && [ "$took" -lt $((16 << 20)) ] && [ "${rss:-999999}" -lt 65536 ] &&
		pass "$c: a frame announced at 256 MiB: refused after $took bytes, receiver at ${rss} kB" ||
		fail "$c: the peer got ${took:-?} bytes in, receiver RSS ${rss:-?} kB"
	: >"$TMP/$c.recv.err"
	timeout 60 $PEER frames $((PORT + 9)) 500
	lines=$(wc -l <"$TMP/$c.recv.err")
	[ "$lines" -ge 1 ] && [ "$lines" -le 4 ] &&
		pass "$c: 1000 bad frames: $lines lines on stderr: $(head -c 300 "$TMP/$c.recv.err")" ||
		fail "$c: 1000 bad frames gave $lines lines"
	# Still serving.
	send $c 9
	consume $c
	printf 'a\nb\n' | "$SHMKIT" produce "$Q.$c.src"
	await $SEND 30; src=$?
	await $RECV 30; rrc=$?
	[ $src = 0 ] && [ $rrc = 0 ] && pass "$c: the receiver then served a real sender to EOF" ||
		fail "$c: send $src recv $rrc"
else
	fail "$c: create"
fi

# --- E8 ----------------------------------------------------------------------------------------
c=e8
if mk $c && (cd "$TMP" && "$SHMKIT_BRIDGE" keygen srv && "$SHMKIT_BRIDGE" keygen other) >/dev/null; then
	"$SHMKIT_BRIDGE" recv "$(ep 10)" "$Q.$c.far" --curve-key "$TMP/srv.key" 2>"$TMP/$c.recv.err" & RECV=$!; PIDS+=($RECV)
	sleep 0.5
	check8() { # WHAT EXPECT_SENDER EXPECT_RECEIVER
		local i
		for ((i = 0; i < 200; i++)); do # the receiver may speak after the sender has gone
			grep -q -- "$3" "$TMP/$c.recv.err" && break
			sleep 0.1
		done
		[ $rc = 1 ] && grep -q -- "$2" "$TMP/err" && { [ -z "$3" ] || grep -q -- "$3" "$TMP/$c.recv.err"; } &&
			pass "$c: $1: sender: $(cat "$TMP/err"); receiver: $(tail -1 "$TMP/$c.recv.err")" ||
			fail "$c: $1: exit $rc: $(cat "$TMP/err") / receiver: $(cat "$TMP/$c.recv.err")"
	}
	timeout 60 "$SHMKIT_BRIDGE" send "$Q.$c.src" "$(ep 10)" --state "$Q.$c.s1" --curve-server "$TMP/other.pub" \
		--connect-timeout 20 2>"$TMP/err"
	rc=$?
	check8 "a wrong server key" "is not its public key" "another server public key"
	timeout 60 "$SHMKIT_BRIDGE" send "$Q.$c.src" "$(ep 10)" --state "$Q.$c.s2" --connect-timeout 20 2>"$TMP/err"
	rc=$?
	check8 "a plain sender to a CURVE receiver" "CURVE" "the peer does not use CURVE"
	kill -9 $RECV
	"$SHMKIT_BRIDGE" recv "$(ep 11)" "$Q.$c.far" 2>"$TMP/$c.recv.err" & RECV=$!; PIDS+=($RECV)
	sleep 0.5
	timeout 60 "$SHMKIT_BRIDGE" send "$Q.$c.src" "$(ep 11)" --state "$Q.$c.s3" --curve-server "$TMP/srv.pub" \
		--connect-timeout 20 2>"$TMP/err"
	rc=$?
	check8 "a CURVE sender to a plain receiver" "does not use CURVE" "the peer uses CURVE"
	kill -9 $RECV
else
	fail "$c: create or keygen"
fi

# --- E9 ----------------------------------------------------------------------------------------
c=e9
if mk $c && "$SHMKIT" create queue "$Q.$c.src2" --capacity 64 --max-size 128; then
	consume $c
	recv $c 12
	# A: hello, then gone for good (its state removed).
	env SHMKIT_BRIDGE_KILL_AT=welcomed "$SHMKIT_BRIDGE" send "$Q.$c.src2" "$(ep 12)" 2>/dev/null
	"$SHMKIT" rm "$Q.$c.src2.bridge-s" >/dev/null 2>&1
	send $c 12
	produce $c 100
	await $SEND 30; src=$?
	sleep 1
	kill -0 $RECV 2>/dev/null && waiting=yes || waiting=no
	"$SHMKIT" bridge senders "$Q.$c.far" >"$TMP/senders"
	id=$(awk '$5 == "open" {print $1}' "$TMP/senders")
	"$SHMKIT" bridge forget "$Q.$c.far" "$id" >"$TMP/forget" 2>&1
	frc=$?
	await $RECV 10; rrc=$?
	await $CONS 10
	got=$(json_field "$TMP/$c.cons" received)
	[ $src = 0 ] && [ $waiting = yes ] && [ -n "$id" ] && [ $frc = 0 ] && [ $rrc = 0 ] && [ "$got" = 100 ] &&
		pass "$c: a sender that said hello and vanished held the end back; 'bridge forget $id' ended it: $(cat "$TMP/forget")" ||
		fail "$c: send $src, waiting $waiting, id '${id}', forget $frc, recv $rrc, got ${got:-?}: $(cat "$TMP/senders" "$TMP/forget")"
	"$SHMKIT" bridge forget "$Q.$c.far" zz 2>"$TMP/err"
	[ $? = 2 ] && pass "forget: a bad sender id is a usage error" || fail "forget zz: $(cat "$TMP/err")"
else
	fail "$c: create"
fi

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all edge checks passed"
