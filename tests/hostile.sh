#!/bin/bash
# hostile: issue 12's hostile neighbours, one check each:
#  - a FIFO at /dev/shm/NAME blocks none of ls, stat, rm (each under timeout); ls shows it;
#  - a truncated (0 bytes) and a 0xff-filled sem.NAME.sem: shmkit_sem_open and `stat` answer
#    an error (no SIGBUS, no abort), and `rm` then frees the name;
#  - SIGKILL at random moments of `create` of a 64 MB queue, 40 times: any leftover is shown
#    by ls (a create links its name only with its header, so none is header-less), `rm`
#    frees the name and create works again;
#  - a creator stopped half-way (SIGSTOP), before or after writing the header, is alive: rm
#    refuses (busy) and its create then completes;
#  - a semaphore half-removed (either file gone, as a kill between the two unlinks or during
#    create leaves it) and `rm` killed at random moments: rm frees the name, create works;
#  - a Barrier party killed while waiting alone: the next arrival does not pass;
#  - nobody can stat a 0644 semaphore, and ls shows it to nobody;
#  - a second writer on a --writers 1 queue is told the writer count is used up; a forked
#    child putting through its parent's handle gets -EDQUOT (whose text says the same);
#  - close(NULL) of every kind returns 0.
# The messages issue 12 asks of the tool (mode named as the reason, setuid modes refused,
# 0666 warned about) are checked by tests/hostile_msgs.sh.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
: "${NSHELP:?NSHELP must name the built tests/nshelp}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }

B=hostile-$$
N=/$B
TMP=$(mktemp -d) || exit 99
cleanup() {
	for n in fifo sem1 sem2 big stop init hs1 hs2 hs3 bar nob q fq; do
		"$SHMKIT" rm "$N.$n" >/dev/null 2>&1
		rm -f "/dev/shm/$B.$n" "/dev/shm/sem.$B.$n.sem"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# A signal death shows as an exit status above 128 (124: timeout fired).
crashed() { [ "$1" -eq 124 ] || [ "$1" -gt 128 ]; }

# --- a FIFO under the name -----------------------------------------------------------------
mkfifo "/dev/shm/$B.fifo" || fail "mkfifo"
ok=1
timeout 20 "$SHMKIT" ls >"$TMP/ls" 2>&1
rc=$?
{ [ $rc -eq 0 ] && grep -q "^$N.fifo .*fifo" "$TMP/ls"; } || { ok=0; fail "fifo: ls exit $rc: $(cat "$TMP/ls")"; }
for c in stat rm; do
	timeout 20 "$SHMKIT" $c "$N.fifo" >"$TMP/out" 2>&1
	rc=$?
	if crashed $rc || [ $rc -eq 0 ] || ! grep -q "^shmkit: $c $N.fifo: " "$TMP/out"; then
		ok=0
		fail "fifo: $c exit $rc: $(cat "$TMP/out")"
	fi
done
[ -p "/dev/shm/$B.fifo" ] || { ok=0; fail "fifo: rm removed someone's FIFO"; }
[ $ok = 1 ] && pass "fifo: ls lists it, stat and rm refuse it at once, none blocks"
rm -f "/dev/shm/$B.fifo"

# --- a truncated and a garbage semaphore file ----------------------------------------------
for k in 1 2; do
	n=$N.sem$k f=/dev/shm/sem.$B.sem$k.sem
	"$SHMKIT" create sem "$n" --init 3 || { fail "create $n"; continue; }
	[ -f "$f" ] || { fail "sem$k: no $f after create (semaphore file naming changed?)"; continue; }
	if [ $k = 1 ]; then
		what="truncated"
		truncate -s 0 "$f"
	else
		what="0xff-filled"
		size=$(stat -c %s "$f")
		head -c "$size" /dev/zero | tr '\0' '\377' >"$f"
	fi
	timeout 20 "$NSHELP" sem-open "$n" >"$TMP/semopen" 2>&1
	rc=$?
	timeout 20 "$SHMKIT" stat "$n" >"$TMP/semstat" 2>&1
	src=$?
	if crashed $rc || [ $rc -ne 0 ] || ! grep -q '^open E' "$TMP/semopen"; then
		fail "sem$k ($what): sem_open exit $rc: $(cat "$TMP/semopen")"
	elif crashed $src || [ $src -ne 1 ] || ! grep -q "^shmkit: stat $n: " "$TMP/semstat"; then
		fail "sem$k ($what): stat exit $src: $(cat "$TMP/semstat")"
	elif ! "$SHMKIT" rm "$n" || [ -e "$f" ] || ! "$SHMKIT" create sem "$n" ||
		! "$SHMKIT" rm "$n"; then
		fail "sem$k ($what): rm did not free the name"
	else
		pass "sem$k ($what): sem_open says $(cut -d' ' -f2 "$TMP/semopen"), stat: $(cut -d: -f3- "$TMP/semstat"); rm frees it"
	fi
done

# --- SIGKILL during create of a large queue, 40 times --------------------------------------
leftovers=0 bad=0
for i in $(seq 40); do
	"$SHMKIT" create queue "$N.big" --capacity 64 --max-size 1048576 2>/dev/null &
	p=$!
	sleep "0.0$((RANDOM % 40))"
	kill -KILL $p 2>/dev/null
	wait $p 2>/dev/null
	if [ -e "/dev/shm/$B.big" ]; then
		if ! timeout 20 "$SHMKIT" stat "$N.big" >/dev/null 2>&1; then
			leftovers=$((leftovers + 1))
			timeout 20 "$SHMKIT" ls >"$TMP/ls" 2>&1
			if ! grep -q "^$N.big " "$TMP/ls"; then
				bad=1
				fail "create kill $i: ls hides the leftover"
			fi
		fi
	fi
	timeout 20 "$SHMKIT" rm "$N.big" >"$TMP/rm" 2>&1
	rc=$?
	if crashed $rc || { [ $rc -ne 0 ] && [ -e "/dev/shm/$B.big" ]; }; then
		bad=1
		fail "create kill $i: rm exit $rc left the name: $(cat "$TMP/rm")"
	fi
	if ! timeout 30 "$SHMKIT" create queue "$N.big" --capacity 64 --max-size 1048576 ||
		! "$SHMKIT" rm "$N.big"; then
		bad=1
		fail "create kill $i: create after rm failed"
	fi
	[ $bad = 0 ] || break
done
[ $bad = 0 ] && pass "create kills: 40 kills ($leftovers left a half-made name), rm freed each, create worked"

# --- a stopped creator is alive: its half-made object is never removed ----------------------
caught=0 bad=0
for i in $(seq 10); do
	"$SHMKIT" create queue "$N.stop" --capacity 256 --max-size 1048576 &
	p=$!
	while [ ! -e "/dev/shm/$B.stop" ] && kill -0 $p 2>/dev/null; do :; done
	kill -STOP $p
	if ! "$SHMKIT" stat "$N.stop" >/dev/null 2>&1; then
		caught=$((caught + 1))
		"$SHMKIT" rm "$N.stop" >"$TMP/rm" 2>&1
		rc=$?
		[ -e "/dev/shm/$B.stop" ] || { bad=1; fail "stopped creator: rm removed its object"; }
		[ $rc -eq 1 ] && grep -qi busy "$TMP/rm" ||
			{ bad=1; fail "stopped creator: rm exit $rc: $(cat "$TMP/rm")"; }
	fi
	kill -CONT $p
	wait $p || { bad=1; fail "stopped creator: its create failed after SIGCONT"; }
	"$SHMKIT" stat "$N.stop" >/dev/null || { bad=1; fail "stopped creator: no object afterwards"; }
	"$SHMKIT" rm "$N.stop" >/dev/null 2>&1
	[ $bad = 0 ] && [ $caught -lt 3 ] || break
done
if [ $bad = 0 ] && [ $caught -gt 0 ]; then
	pass "stopped creator: caught half-way $caught times; rm said busy, create then completed"
elif [ $bad = 0 ]; then
	fail "stopped creator: never caught a create half-way in 10 tries"
fi

# The same after the creator wrote the header, while it initialises a large ring.
caught=0 bad=0
for i in $(seq 5); do
	"$SHMKIT" create queue "$N.init" --capacity 1048576 --max-size 64 &
	p=$!
	while kill -0 $p 2>/dev/null; do
		m=$(od -An -tx8 -N8 "/dev/shm/$B.init" 2>/dev/null | tr -d ' ')
		[ -n "$m" ] && [ "$m" != 0000000000000000 ] && break
	done
	kill -STOP $p 2>/dev/null
	if ! "$SHMKIT" stat "$N.init" >/dev/null 2>&1 && [ -e "/dev/shm/$B.init" ]; then
		caught=$((caught + 1))
		"$SHMKIT" rm "$N.init" >"$TMP/rm" 2>&1
		rc=$?
		[ -e "/dev/shm/$B.init" ] || { bad=1; fail "initialising creator: rm removed its object"; }
		[ $rc -eq 1 ] && grep -qi busy "$TMP/rm" ||
			{ bad=1; fail "initialising creator: rm exit $rc: $(cat "$TMP/rm")"; }
	fi
	kill -CONT $p 2>/dev/null
	wait $p || { bad=1; fail "initialising creator: its create failed after SIGCONT"; }
	"$SHMKIT" stat "$N.init" >/dev/null || { bad=1; fail "initialising creator: no object afterwards"; }
	"$SHMKIT" rm "$N.init" >/dev/null 2>&1
	[ $bad = 0 ] && [ $caught -lt 2 ] || break
done
if [ $bad = 0 ] && [ $caught -gt 0 ]; then
	pass "initialising creator: caught after its header $caught times; rm said busy, create completed"
elif [ $bad = 0 ]; then
	fail "initialising creator: never caught a create after its header in 5 tries"
fi

# --- a semaphore half-removed, and rm killed at random moments ------------------------------
"$SHMKIT" create sem "$N.hs1" && rm -f "/dev/shm/sem.$B.hs1.sem" # region without semaphore
"$SHMKIT" create sem "$N.hs2" && rm -f "/dev/shm/$B.hs2"          # semaphore without region
timeout 20 "$SHMKIT" ls >"$TMP/ls" 2>&1
grep -q "$N.hs2" "$TMP/ls" || fail "half sem: ls hides the orphan semaphore of $N.hs2"
for k in 1 2; do
	n=$N.hs$k
	if timeout 20 "$SHMKIT" rm "$n" && [ ! -e "/dev/shm/$B.hs$k" ] &&
		[ ! -e "/dev/shm/sem.$B.hs$k.sem" ] && "$SHMKIT" create sem "$n" && "$SHMKIT" rm "$n"; then
		pass "half sem $k: rm freed the name, create works"
	else
		fail "half sem $k: not freed: $(ls /dev/shm | grep "$B.hs$k")"
	fi
done
bad=0
for i in $(seq 20); do
	"$SHMKIT" create sem "$N.hs3" || { bad=1; fail "rm kill $i: create refused"; break; }
	"$SHMKIT" rm "$N.hs3" &
	p=$!
	sleep "0.00$((RANDOM % 4))"
	kill -KILL $p 2>/dev/null
	wait $p 2>/dev/null
	timeout 20 "$SHMKIT" rm "$N.hs3" >/dev/null 2>&1
	if [ -e "/dev/shm/$B.hs3" ] || [ -e "/dev/shm/sem.$B.hs3.sem" ]; then
		bad=1
		fail "rm kill $i: a second rm left $(ls /dev/shm | grep "$B.hs3")"
		break
	fi
done
[ $bad = 0 ] && pass "rm kills: 20 rm's killed at random moments, the next rm freed the name each time"

# --- a barrier party killed while waiting alone ---------------------------------------------
"$SHMKIT" create barrier "$N.bar" --parties 2 || fail "create bar"
"$NSHELP" barrier "$N.bar" 60000 >/dev/null &
p=$!
sleep 0.5
kill -KILL $p
wait $p 2>/dev/null
out=$(timeout 30 "$NSHELP" barrier "$N.bar" 5000)
case "$out" in
"wait ECANCELED" | "wait ETIMEDOUT") pass "barrier: the next arrival after a dead lone party: $out" ;;
*) fail "barrier: the next arrival after a dead lone party: '$out'" ;;
esac

# --- nobody and a 0644 semaphore ------------------------------------------------------------
as_nobody() {
	if command -v setpriv >/dev/null; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
	else
		return 77
	fi
}
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && as_nobody true 2>/dev/null &&
	as_nobody test -x "$SHMKIT" 2>/dev/null; then
	"$SHMKIT" create sem "$N.nob" --mode 0644 || fail "create nob"
	as_nobody "$SHMKIT" stat "$N.nob" >"$TMP/nob" 2>&1
	rc=$?
	as_nobody "$SHMKIT" ls >"$TMP/nobls" 2>&1
	if [ $rc -eq 0 ] && grep -q "^$N.nob .*sem" "$TMP/nobls"; then
		pass "nobody: stat of a 0644 semaphore works, ls shows it"
	else
		fail "nobody: stat exit $rc: $(cat "$TMP/nob"); ls: $(grep "$N" "$TMP/nobls")"
	fi
else
	echo "skip: nobody checks (not root, no nobody user, or setpriv unavailable)"
fi

# --- a second writer on a --writers 1 queue -------------------------------------------------
"$SHMKIT" create queue "$N.q" --capacity 4 --max-size 64 --writers 1 || fail "create q"
mkfifo "$TMP/in"
timeout 60 "$SHMKIT" produce "$N.q" <"$TMP/in" &
p=$!
exec 9>"$TMP/in" # the first writer stays attached while this is open
for t in $(seq 100); do
	[ "$("$SHMKIT" stat --json "$N.q" | sed -n 's/.*"writers_attached":\([0-9]*\).*/\1/p')" = 1 ] && break
	sleep 0.1
done
echo x | timeout 20 "$SHMKIT" produce "$N.q" >"$TMP/w2" 2>&1
rc=$?
exec 9>&-
wait $p
if [ $rc -eq 1 ] && grep -q -- "--writers" "$TMP/w2" && ! grep -qi "too many participants" "$TMP/w2"; then
	pass "writers 1: the second writer is told: $(cat "$TMP/w2")"
else
	fail "writers 1: second writer exit $rc: $(cat "$TMP/w2")"
fi

# A forked child putting through its parent's handle is a further writer: told the same.
"$SHMKIT" create queue "$N.fq" --capacity 4 --max-size 64 --writers 1 || fail "create fq"
out=$(timeout 30 "$NSHELP" fork-put "$N.fq" | tr '\n' ',')
[ "$out" = "parent 0,child EDQUOT," ] && pass "writers 1: a forked child's put is refused with EDQUOT" ||
	fail "writers 1, forked child: $out"

# --- close(NULL) ----------------------------------------------------------------------------
out=$("$NSHELP" close-null)
[ "$out" = "close-null 0" ] && pass "close(NULL) of every kind returns 0" || fail "close(NULL): $out"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
exit 0
