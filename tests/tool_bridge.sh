#!/bin/bash
# tool_bridge: `shmkit bridge` on loopback, two queues standing for two hosts. Stamped messages
# go produce -> queue -> bridge send -> tcp://127.0.0.1 -> bridge recv -> queue -> consume
# --verify, and must arrive exactly once, in order, while
#  - the receiving bridge is SIGKILLed and restarted several times mid-stream (the far queue,
#    created with --writers 1, must not see EOF because of it);
#  - the sending bridge is SIGKILLed and restarted: no duplicate, no corruption, and what is
#    lost is at most its window and counted in the source queue's stats;
#  - the receiver is down when the sender starts, and down again for longer than the resend
#    interval (reconnects);
# EOF travels (consumer ends, both bridges exit 0, their state objects are removed); a bad
# endpoint is a usage error; a peer speaking something else is a clear error.
# Skips (77) when shmkit was built without libzmq.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
if [ ! -x "${SHMKIT_BRIDGE:-}" ]; then
	echo "SKIP: shmkit built without libzmq"
	exit 77
fi

Q=/tool-bridge-$$
TMP=$(mktemp -d) || exit 99
PORT=$((20000 + $$ % 20000))
declare -a PIDS=() # every process started, killed at the end should a check fail
# Every process of ours: those started here, and any whose command line names our queues (the
# keepers the receivers start).
cleanup() {
	trap "" INT TERM HUP # a second signal must not cut the cleaning short
	local p n
	for p in "${PIDS[@]}" $(ps -eo pid=,args= | grep -F -- "$Q." | grep -v grep | awk '{print $1}'); do
		kill -9 "$p" 2>/dev/null
	done
	sleep 0.2
	for n in $(ls /dev/shm 2>/dev/null | grep "^${Q#/}"); do "$SHMKIT" rm "/$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
json_field() { sed -n "s/.*\"$2\": *\(-\{0,1\}[0-9][0-9]*\).*/\1/p" "$1"; }
stat_field() { "$SHMKIT" stat "$1" | sed -n "s/^$2: *//p"; }
# The keeper (the far queue's writer, see tools/bridge/keeper.c) holds NAME.bridge-l.
keeper_pid() {
	local p
	p=$("$SHMKIT" stat "$1.bridge-l" 2>/dev/null | sed -n 's/^lock holder: *\(pid \)\{0,1\}\([0-9][0-9]*\).*/\2/p')
	[ -n "$p" ] && PIDS+=("$p")
}
# await PID SECONDS: its exit status, or 124 after killing it when it takes longer.
await() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1"; return; }
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}

# run_case NAME N WINDOW: queues NAME.src -> NAME.far, producer of N, verifying consumer.
start_case() {
	local c=$1
	"$SHMKIT" create queue "$Q.$c.src" --capacity 64 --max-size 128 || return 1
	"$SHMKIT" create queue "$Q.$c.far" --capacity 64 --max-size 128 --writers 1 || return 1
}
# Started without timeout(1) in between, so that $! is the bridge itself (for kill -9).
recv_start() { "$SHMKIT" bridge recv "tcp://127.0.0.1:$PORT" "$Q.$1.far" -q \
	>>"$TMP/$1.recv" 2>>"$TMP/$1.recv.err" & RECV=$!; PIDS+=($RECV); }
send_start() { "$SHMKIT" bridge send "$Q.$1.src" "tcp://127.0.0.1:$PORT" \
	--resend 0.5 --connect-timeout 0 "${@:2}" >>"$TMP/$1.send" 2>>"$TMP/$1.send.err" & SEND=$!; PIDS+=($SEND); }

check_consumer() { # NAME EXPECTED_RECEIVED SENT_DIGEST_OR_EMPTY
	local f=$TMP/$1.cons k ok=1
	for k in corrupt out_of_order duplicates; do
		[ "$(json_field "$f" $k)" = 0 ] || { fail "$1: $k: $(cat "$f")"; ok=0; }
	done
	[ "$(json_field "$f" received)" = "$2" ] || { fail "$1: received $(json_field "$f" received), expected $2"; ok=0; }
	[ -z "$3" ] || [ "$(json_field "$f" digest)" = "$3" ] || { fail "$1: digests differ"; ok=0; }
	return $((1 - ok))
}

# --- 1. the receiving bridge SIGKILLed 4 times mid-stream -----------------------------------
N=1000000
c=kr
if start_case $c; then
	timeout 300 "$SHMKIT" consume "$Q.$c.far" --verify --json >"$TMP/$c.cons" & CONS=$!
	recv_start $c
	keeper_pid "$Q.$c.far"
	send_start $c
	timeout 300 "$SHMKIT" produce "$Q.$c.src" --count $N --size 64 --json >"$TMP/$c.prod" & PROD=$!
	for i in 1 2 3 4; do
		sleep 0.3
		kill -0 $CONS 2>/dev/null || fail "$c: the stream ended before kill $i (not mid-stream)"
		kill -9 $RECV 2>/dev/null
		wait $RECV 2>/dev/null
		sleep 0.2
		recv_start $c
	done
	wait $PROD || fail "$c: producer failed"
	await $SEND 240 || fail "$c: send bridge exited $? ($(cat "$TMP/$c.send.err"))"
	await $RECV 240 || fail "$c: receiving bridge exited $? ($(cat "$TMP/$c.recv.err"))"
	wait $CONS || fail "$c: consumer failed"
	if check_consumer $c $N "$(json_field "$TMP/$c.prod" digest)"; then
		pass "$c: receiver killed 4 times: $N messages, each once, in order; no early EOF"
	fi
	[ "$(stat_field "$Q.$c.far" "writers total")" = 1 ] ||
		fail "$c: far queue saw $(stat_field "$Q.$c.far" "writers total") writers, expected 1 (the keeper)"
	left=$(ls /dev/shm | grep -c "^${Q#/}\.$c\.\(src\|far\)\.bridge")
	[ "$left" = 0 ] && pass "$c: EOF travelled; bridge state removed at the end" ||
		fail "$c: $left bridge objects left: $(ls /dev/shm | grep "^${Q#/}\.$c")"
else
	fail "$c: create"
fi

# --- 2. the sending bridge SIGKILLed and restarted ------------------------------------------
N=1000000 W=64
c=ks
if start_case $c; then
	timeout 300 "$SHMKIT" consume "$Q.$c.far" --verify --json >"$TMP/$c.cons" & CONS=$!
	recv_start $c
	keeper_pid "$Q.$c.far"
	send_start $c --window $W
	timeout 300 "$SHMKIT" produce "$Q.$c.src" --count $N --size 64 --json >"$TMP/$c.prod" & PROD=$!
	for i in 1 2; do
		sleep 0.3
		kill -0 $CONS 2>/dev/null || fail "$c: the stream ended before kill $i (not mid-stream)"
		kill -9 $SEND 2>/dev/null
		wait $SEND 2>/dev/null
		send_start $c --window $W
	done
	wait $PROD || fail "$c: producer failed"
	await $SEND 240 || fail "$c: send bridge exited $? ($(cat "$TMP/$c.send.err"))"
	await $RECV 240 || fail "$c: receiving bridge exited $? ($(cat "$TMP/$c.recv.err"))"
	wait $CONS || fail "$c: consumer failed"
	lost=$(stat_field "$Q.$c.src" "lost to dead consumers")
	got=$(json_field "$TMP/$c.cons" received)
	if [ -n "$lost" ] && [ "$lost" -le $((2 * W)) ] && check_consumer $c $((N - lost)) ""; then
		pass "$c: sender killed twice: $got received once each, $lost lost (<= 2 x window $W), counted in the source's stats; $(grep -c "previous bridge died" "$TMP/$c.send.err") restarts found a loss"
	else
		fail "$c: received $got + lost ${lost:-?} vs $N ($(cat "$TMP/$c.send.err"))"
	fi
else
	fail "$c: create"
fi

# --- 2b. the sending bridge SIGKILLed with a full window (the far consumer not yet started),
# then the receiving bridge too, so what ZeroMQ still held for it is gone: the window is lost,
# and must be counted (not silently dropped, not delivered twice).
N=5000 W=64
c=kw
if start_case $c; then
	recv_start $c
	keeper_pid "$Q.$c.far"
	send_start $c --window $W
	timeout 300 "$SHMKIT" produce "$Q.$c.src" --count $N --size 64 --json >"$TMP/$c.prod" & PROD=$!
	sleep 1.5 # far queue, staging and the window fill up; nothing is acknowledged any more
	kill -9 $SEND 2>/dev/null
	wait $SEND 2>/dev/null
	kill -9 $RECV 2>/dev/null
	wait $RECV 2>/dev/null
	recv_start $c
	send_start $c --window $W
	timeout 300 "$SHMKIT" consume "$Q.$c.far" --verify --json >"$TMP/$c.cons" & CONS=$!
	wait $PROD || fail "$c: producer failed"
	await $SEND 240 || fail "$c: send bridge exited $? ($(cat "$TMP/$c.send.err"))"
	await $RECV 240 || fail "$c: receiving bridge exited $? ($(cat "$TMP/$c.recv.err"))"
	wait $CONS || fail "$c: consumer failed"
	lost=$(stat_field "$Q.$c.src" "lost to dead consumers")
	got=$(json_field "$TMP/$c.cons" received)
	if [ -n "$lost" ] && [ "$lost" -ge 1 ] && [ "$lost" -le $W ] && check_consumer $c $((N - lost)) ""; then
		pass "$c: sender killed with its window unacknowledged: $got received once each, $lost lost (<= window $W) and counted in the source's stats"
	else
		fail "$c: received $got + lost ${lost:-?} vs $N ($(cat "$TMP/$c.send.err"))"
	fi
else
	fail "$c: create"
fi

# --- 3. reconnects: receiver down at the start, and down again for a while -------------------
N=1000000
c=rc
if start_case $c; then
	timeout 300 "$SHMKIT" consume "$Q.$c.far" --verify --json >"$TMP/$c.cons" & CONS=$!
	send_start $c
	timeout 300 "$SHMKIT" produce "$Q.$c.src" --count $N --size 64 --json >"$TMP/$c.prod" & PROD=$!
	sleep 1.5
	recv_start $c
	keeper_pid "$Q.$c.far"
	sleep 0.3
	kill -0 $CONS 2>/dev/null || fail "$c: the stream ended before the kill (not mid-stream)"
	kill -9 $RECV 2>/dev/null
	wait $RECV 2>/dev/null
	sleep 2 # longer than --resend: the sender resends into a void, then reconnects
	recv_start $c
	wait $PROD || fail "$c: producer failed"
	await $SEND 240 || fail "$c: send bridge exited $? ($(cat "$TMP/$c.send.err"))"
	await $RECV 240 || fail "$c: receiving bridge exited $? ($(cat "$TMP/$c.recv.err"))"
	wait $CONS || fail "$c: consumer failed"
	check_consumer $c $N "$(json_field "$TMP/$c.prod" digest)" &&
		pass "$c: receiver down at the start and for 2 s mid-stream: all $N once, in order"
else
	fail "$c: create"
fi

# --- 3b. CURVE: an admitted key delivers, another key is refused ------------------------------
c=cv
if start_case $c && (cd "$TMP" && "$SHMKIT" bridge keygen srv && "$SHMKIT" bridge keygen cli &&
	"$SHMKIT" bridge keygen bad) >/dev/null; then
	cp "$TMP/cli.pub" "$TMP/allow"
	"$SHMKIT" bridge recv "tcp://127.0.0.1:$((PORT + 3))" "$Q.$c.far" --curve-key "$TMP/srv.key" \
		--curve-allow "$TMP/allow" -q 2>"$TMP/$c.recv.err" & RECV=$!; PIDS+=($RECV)
	timeout 60 "$SHMKIT" bridge send "$Q.$c.src" "tcp://127.0.0.1:$((PORT + 3))" --state "$Q.$c.bad" \
		--curve-server "$TMP/srv.pub" --curve-key "$TMP/bad.key" --connect-timeout 10 2>"$TMP/err"
	rc=$?
	[ $rc = 1 ] && grep -q "refused our CURVE key" "$TMP/err" && pass "$c: a key not admitted: exit 1: $(cat "$TMP/err")" ||
		fail "$c: a key not admitted: exit $rc: $(cat "$TMP/err")"
	"$SHMKIT" bridge send "$Q.$c.src" "tcp://127.0.0.1:$((PORT + 3))" --curve-server "$TMP/srv.pub" \
		--curve-key "$TMP/cli.key" -q 2>"$TMP/$c.send.err" & SEND=$!; PIDS+=($SEND)
	printf 'secret\nlines\n' | timeout 60 "$SHMKIT" produce "$Q.$c.src" || fail "$c: produce"
	out=$(timeout 60 "$SHMKIT" consume "$Q.$c.far")
	await $SEND 60 || fail "$c: send bridge exited $? ($(cat "$TMP/$c.send.err"))"
	await $RECV 60 || fail "$c: receiving bridge exited $? ($(cat "$TMP/$c.recv.err"))"
	[ "$out" = "$(printf 'secret\nlines')" ] && pass "$c: CURVE-encrypted, admitted sender delivered both lines" ||
		fail "$c: got '$out'"
else
	fail "$c: create or keygen"
fi

# --- 4. errors ------------------------------------------------------------------------------
"$SHMKIT" create queue "$Q.err" --capacity 4 --max-size 64 || fail "create err"
for ep in "tcp://127.0.0.1" "foo://x:1" "tcp://127.0.0.1:99999" ""; do
	timeout 10 "$SHMKIT" bridge send "$Q.err" "$ep" 2>"$TMP/err"
	rc=$?
	[ $rc = 2 ] && grep -q "endpoint" "$TMP/err" && pass "bad endpoint '$ep': exit 2: $(head -1 "$TMP/err")" ||
		fail "bad endpoint '$ep': exit $rc: $(cat "$TMP/err")"
done
timeout 10 "$SHMKIT" bridge recv "tcp://127.0.0.1:$PORT" /tool-bridge-missing-$$ 2>"$TMP/err"
[ $? = 1 ] && pass "missing far queue: exit 1: $(cat "$TMP/err")" || fail "missing far queue: $(cat "$TMP/err")"
if command -v python3 >/dev/null 2>&1; then
	# A TCP server that answers every connection with an HTTP response.
	python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); s.settimeout(30)
while True:
    try: c, _ = s.accept()
    except Exception: break
    c.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"x" * 64); c.close()
' $((PORT + 1)) & HTTP=$!
	sleep 0.5
	timeout 60 "$SHMKIT" bridge send "$Q.err" "tcp://127.0.0.1:$((PORT + 1))" --state "$Q.err.st" 2>"$TMP/err"
	rc=$?
	kill $HTTP 2>/dev/null; wait $HTTP 2>/dev/null
	[ $rc = 1 ] && grep -q "does not speak" "$TMP/err" && pass "a peer speaking HTTP: exit 1: $(cat "$TMP/err")" ||
		fail "a peer speaking HTTP: exit $rc: $(cat "$TMP/err")"
	"$SHMKIT" rm "$Q.err.st" >/dev/null 2>&1
else
	echo "skip: no python3 for the foreign-peer case"
fi
timeout 20 "$SHMKIT" bridge send "$Q.err" "tcp://127.0.0.1:$((PORT + 2))" --connect-timeout 1 --state "$Q.err.st2" 2>"$TMP/err"
[ $? = 1 ] && grep -q "no shmkit bridge receiver answered" "$TMP/err" && pass "nobody there: exit 1: $(cat "$TMP/err")" ||
	fail "nobody there: $(cat "$TMP/err")"
"$SHMKIT" rm "$Q.err.st2" >/dev/null 2>&1

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all bridge checks passed"
