#!/bin/bash
# hostile_users: issue 22's attacks by another user, run as real users in a private mount
# namespace whose /dev/shm is a small tmpfs of its own (so a full /dev/shm and squatted names
# touch nobody else's tests):
#  1. a reader of a 0644 Lock holding read locks on every byte of its file denies nobody a
#     seat: the owner's `lock run` and acquires work, and the reader cannot open the lease file;
#  2. a reader queueing blocking read locks on the file keeps no dead holder alive: the next
#     acquire reports the owner died, and a queue whose only writer was killed reaches EOF;
#  3. another user's file, FIFO, directory or symlink at /dev/shm/.shmkit-wfg.<uid> turns
#     nobody's deadlock detection off: a two-lock cycle still gets exactly one -EDEADLK;
#  6. a lock wait with /dev/shm full (no graph yet) is no SIGBUS: the wait times out;
#  and issue 19 item 4's sharing policy (shmkit(7), SHARING): a member of a 0660 queue's group
#  produces and consumes; root refuses a user's 0600 queue (its owner could forge anything) and
#  another user's 0666 object is refused, each unless SHMKIT_TRUST=any; SHMKIT_TRUST=own
#  refuses the group's queue; views (stat) look at anything.
# Needs root (to make the users and the mount namespace): exits 77 where that is refused.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
: "${NSHELP:?NSHELP must name the built tests/nshelp}"

if [ -z "${HU_INSIDE:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to make users and a mount namespace"; exit 77; }
	for c in useradd userdel groupadd groupdel setpriv unshare python3; do
		command -v $c >/dev/null || { echo "SKIP: no $c"; exit 77; }
	done
	unshare --mount --propagation private true 2>/dev/null ||
		{ echo "SKIP: unshare --mount refused"; exit 77; }
	# The libtool wrappers make their real programs on first use: do it as root, now.
	"$SHMKIT" --version >/dev/null && "$NSHELP" close-null >/dev/null
	HU_INSIDE=1 exec unshare --mount --propagation private "$0" "$@"
fi

mount -t tmpfs -o size=6m,mode=1777 "shmkit-test-$$" /dev/shm ||
	{ echo "SKIP: cannot mount a tmpfs on /dev/shm"; exit 77; }

TAG=sk$$
UA=${TAG}a UB=${TAG}b UC=${TAG}c G=${TAG}g
TMP=$(mktemp -d) || exit 99
chmod 1777 "$TMP"
cleanup() {
	jobs -p | xargs -r kill -9 2>/dev/null
	wait 2>/dev/null
	userdel "$UA" 2>/dev/null
	userdel "$UB" 2>/dev/null
	userdel "$UC" 2>/dev/null
	groupdel "$G" 2>/dev/null
	rm -rf "$TMP"
	umount /dev/shm 2>/dev/null
}
trap cleanup EXIT
groupadd "$G" && useradd -M -N -g "$G" -s /bin/sh "$UA" && useradd -M -N -s /bin/sh "$UB" &&
	useradd -M -N -G "$G" -s /bin/sh "$UC" ||
	{ echo "SKIP: cannot make users"; exit 77; }
A=$(id -u "$UA")

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# Run as user $1, for at most 60 s.
as() { local u=$1; shift; timeout 60 setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$@"; }
# Kill a process started with `as ... &` (timeout's child too).
kill_all() { local c; for c in $(pgrep -P "$1"); do kill_all "$c"; done; kill -9 "$1" 2>/dev/null; }
killtree() { kill_all "$1"; wait "$1" 2>/dev/null; }
# Wait (up to 60 s) for a marker file.
await() { local i; for i in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }

# B's read locks on a file: whole range held (mode hold), or blocking ones queued on the
# seat bytes 2^52.. (mode queue); touches $2 once in place, then sleeps.
reader_locks() {
	as "$UB" /usr/bin/python3 - "$1" "$2" "$3" <<'EOF' &
import fcntl, os, sys, time
path, mark, mode = sys.argv[1:4]
fd = os.open(path, os.O_RDONLY)
if mode == "hold":
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 0, 0)  # every byte, to infinity
    open(mark, "w").close()
    time.sleep(60)
else:
    open(mark, "w").close()
    # Blocking, over every seat's byte: granted when the present holders go.
    fcntl.lockf(fd, fcntl.LOCK_SH, 4096, 1 << 52)
    time.sleep(60)
EOF
}

# --- 1. a reader holding read locks on every byte ------------------------------------------
as "$UA" "$SHMKIT" create lock /l1 --mode 0644 || fail "create /l1"
reader_locks /dev/shm/l1 "$TMP/r1" hold
rpid=$!
await "$TMP/r1" || fail "reader 1 never locked"
ok=1
out=$(as "$UA" "$SHMKIT" lock run /l1 -- true 2>&1) || { ok=0; fail "1: lock run under a reader's read locks: $out"; }
out=$(as "$UA" "$NSHELP" lock /l1 acq rel 2>&1)
[ "$out" = "$(printf 'acq 0\nrel 0')" ] || { ok=0; fail "1: acquire under a reader's read locks: $out"; }
lease=$(ls -a /dev/shm | grep '^\.shmkit-lease-' | head -1)
if [ -z "$lease" ]; then
	ok=0; fail "1: no lease file"
else
	mode=$(stat -c %a "/dev/shm/$lease")
	[ "$mode" = 600 ] || { ok=0; fail "1: lease file of a 0644 object has mode $mode"; }
	as "$UB" sh -c "exec 3</dev/shm/$lease" 2>/dev/null && { ok=0; fail "1: the reader opened the lease file"; }
fi
[ $ok = 1 ] && pass "1: a reader's read locks on every byte deny no seat; it cannot open the lease file"
killtree $rpid

# --- 2. a reader queueing read locks keeps no dead holder alive ------------------------------
as "$UA" "$SHMKIT" create lock /l2 --mode 0644 || fail "create /l2"
as "$UA" "$NSHELP" lock /l2 acq touch:"$TMP/h2" sleep:60000 >/dev/null &
hpid=$!
await "$TMP/h2" || fail "2: holder never held"
reader_locks /dev/shm/l2 "$TMP/r2" queue
rpid=$!
await "$TMP/r2" || fail "2: reader never started"
sleep 0.3
killtree $hpid
out=$(as "$UA" "$NSHELP" lock /l2 tmo:10000 2>&1)
[ "$out" = "tmo 1" ] && pass "2: the dead holder is seen dead under a reader's queued read locks (OWNER_DIED)" ||
	fail "2: acquire after the holder died: '$out' (want 'tmo 1', OWNER_DIED)"
killtree $rpid

as "$UA" "$SHMKIT" create queue /q2 --capacity 8 --max-size 64 --writers 1 --mode 0644 || fail "create /q2"
(sleep 60 | as "$UA" "$SHMKIT" produce /q2) &
ppid=$!
sleep 0.5
reader_locks /dev/shm/q2 "$TMP/r3" queue
rpid=$!
await "$TMP/r3" || fail "2: queue reader never started"
sleep 0.3
killtree $ppid
out=$(as "$UA" "$SHMKIT" consume /q2 2>&1)
rc=$?
[ $rc -eq 0 ] && pass "2: a queue whose only writer was killed reaches EOF under a reader's read locks" ||
	fail "2: consume after the writer died: exit $rc: $out"
killtree $rpid

# --- 3. another user squats the deadlock graph's name ----------------------------------------
cycle() { # two processes of A in a two-lock cycle: how many got -EDEADLK, and any crash
	local x=$1 y=$2 o1 o2 r1 r2
	rm -f "$TMP"/c1 "$TMP"/c2
	as "$UA" "$NSHELP" lock "$x" acq touch:"$TMP/c1" wait:"$TMP/c2" use:"$y" tmo:${3:-20000} >"$TMP/o1" 2>&1 &
	o1=$!
	as "$UA" "$NSHELP" lock "$y" acq touch:"$TMP/c2" wait:"$TMP/c1" use:"$x" tmo:${3:-20000} >"$TMP/o2" 2>&1 &
	o2=$!
	wait $o1; r1=$?
	wait $o2; r2=$?
	echo "$(cat "$TMP/o1" "$TMP/o2" | grep -c '^tmo EDEADLK') $r1 $r2 $(cat "$TMP/o1" "$TMP/o2" | tr '\n' ' ')"
}
as "$UA" "$SHMKIT" create lock /x --mode 0600 && as "$UA" "$SHMKIT" create lock /y --mode 0600 ||
	fail "create /x /y"
for squat in file fifo dir symlink; do
	p=/dev/shm/.shmkit-wfg.$A
	rm -rf /dev/shm/.shmkit-wfg."$A"*
	case $squat in
	file) as "$UB" sh -c "echo x > $p; chmod 666 $p" ;;
	fifo) as "$UB" mkfifo -m 666 "$p" ;;
	dir) as "$UB" mkdir -m 777 "$p" ;;
	symlink) as "$UB" ln -s /dev/shm/elsewhere "$p" ;;
	esac
	res=$(cycle /x /y)
	set -- $res
	if [ "$1" = 1 ] && [ "$2" = 0 ] && [ "$3" = 0 ]; then
		pass "3: a $squat squatting .shmkit-wfg.<uid>: the cycle still got exactly one -EDEADLK"
	else
		fail "3: a $squat squatting .shmkit-wfg.<uid>: $res"
	fi
	rm -rf "$p"
done
ls -a /dev/shm | grep -q "^\.shmkit-wfg\.$A\.[0-9a-f]\{16\}$" ||
	fail "3: no graph under a random name after the squat"

# --- 3. another user makes the pollable descriptors' socket paths first ---------------------
if [ -x "${EXAMPLES:-}/epoll_queue" ]; then
	as "$UA" "$SHMKIT" create queue /fq --capacity 8 --max-size 64 --writers 1 --mode 0644 ||
		fail "create /fq"
	dev=$(printf '%x' "$(stat -c %d /dev/shm/fq)")
	ino=$(printf '%x' "$(stat -c %i /dev/shm/fq)")
	# Every path the old scheme (.shmkit-fd-DEV-INO-SEAT) would have used, as B's sockets.
	as "$UB" /usr/bin/python3 -c '
import socket, sys
for k in range(256):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("/dev/shm/.shmkit-fd-%s-%s-%d" % (sys.argv[1], sys.argv[2], k))
' "$dev" "$ino" || fail "3: B could not make the old paths"
	as "$UA" "$EXAMPLES/epoll_queue" /fq 20 >"$TMP/ep.out" 2>"$TMP/ep.err" &
	epid=$!
	sleep 0.5
	printf 'p\nq\n' | as "$UA" "$SHMKIT" produce /fq
	wait $epid
	rc=$?
	if [ $rc = 0 ] && [ "$(head -2 "$TMP/ep.out")" = "$(printf 'msg: p\nmsg: q')" ]; then
		pass "3: another user's sockets at every predictable path: shmkit_queue_fd still works"
	else
		fail "3: epoll_queue beside another user's sockets: exit $rc: $(cat "$TMP/ep.out" "$TMP/ep.err")"
	fi
else
	echo "SKIP part: no \$EXAMPLES/epoll_queue"
fi

# --- 6. a lock wait with /dev/shm full -------------------------------------------------------
rm -rf /dev/shm/.shmkit-wfg.*
as "$UA" "$SHMKIT" create lock /fx --mode 0600 && as "$UA" "$SHMKIT" create lock /fy --mode 0600 ||
	fail "create /fx /fy"
as "$UA" dd if=/dev/zero of=/dev/shm/fill bs=64k 2>/dev/null
res=$(cycle /fx /fy 1500)
set -- $res
if [ "$2" = 0 ] && [ "$3" = 0 ] && [ "$(echo "$res" | grep -o 'tmo [A-Z0-9]*' | wc -l)" = 2 ]; then
	pass "6: lock waits with /dev/shm full (no graph possible): no SIGBUS"
else
	fail "6: lock waits with /dev/shm full: $res (exit 135 is SIGBUS)"
fi
rm -f /dev/shm/fill

# --- issue 19 item 4: the sharing policy -----------------------------------------------------
as "$UA" "$SHMKIT" create queue /gq --capacity 16 --max-size 64 --mode 0660 || fail "create /gq"
out=$(printf 'one\ntwo\n' | as "$UC" "$SHMKIT" produce /gq 2>&1) || fail "19.4: a group member's produce on a 0660 queue: $out"
out=$(as "$UC" "$SHMKIT" consume /gq --count 1 2>&1)
[ "$out" = one ] || fail "19.4: a group member's consume on a 0660 queue: '$out'"
out=$(as "$UA" "$SHMKIT" consume /gq --count 1 2>&1)
[ "$out" = two ] && pass "19.4: a member of a 0660 queue's group produces and consumes; the owner consumes what it put" ||
	fail "19.4: the owner's consume after the member's produce: '$out'"
out=$(echo x | SHMKIT_TRUST=own as "$UC" "$SHMKIT" produce /gq 2>&1) &&
	fail "19.4: SHMKIT_TRUST=own accepted a group's 0660 queue: $out" ||
	pass "19.4: SHMKIT_TRUST=own refuses a queue the owner's group may write"
out=$(as "$UB" "$SHMKIT" produce /gq </dev/null 2>&1) &&
	fail "19.4: a user outside the group used a 0660 queue: $out"

as "$UA" "$SHMKIT" create queue /rq --capacity 4 --max-size 64 --mode 0600 || fail "create /rq"
echo forged | as "$UA" "$SHMKIT" produce /rq || fail "produce /rq"
out=$("$SHMKIT" consume /rq --count 1 --timeout 2 2>&1)
rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q "^shmkit: consume /rq: "; then
	out=$(SHMKIT_TRUST=any "$SHMKIT" consume /rq --count 1 --timeout 5 2>&1)
	[ "$out" = forged ] && pass "19.4: root refuses a user's 0600 queue by default, takes it with SHMKIT_TRUST=any" ||
		fail "19.4: root with SHMKIT_TRUST=any: '$out'"
else
	fail "19.4: root consumed from a less privileged user's 0600 queue by default: exit $rc: $out"
fi
"$SHMKIT" stat /rq >/dev/null 2>&1 || fail "19.4: root's stat (a view) of a user's queue refused"

as "$UA" "$SHMKIT" create value /ov --init 7 --mode 0666 2>/dev/null || fail "create /ov"
out=$(as "$UB" "$SHMKIT" value get /ov 2>&1) && fail "19.4: another user's 0666 value used by default: $out"
out=$(SHMKIT_TRUST=any as "$UB" "$SHMKIT" value get /ov 2>&1)
[ "$out" = 7 ] && pass "19.4: another user's 0666 value refused by default, read with SHMKIT_TRUST=any" ||
	fail "19.4: SHMKIT_TRUST=any value get: '$out'"

exit $((failures > 0))
