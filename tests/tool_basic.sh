#!/bin/bash
# tool_basic: the shmkit tool run as separate processes: --version/--help, race and bank
# figures, create/stat/ls/rm for each kind, exact modes under a umask, and bad input (usage
# errors exit 2, runtime errors exit 1, never a crash).
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
	echo "SKIP: no writable /dev/shm"
	exit 77
fi

P=/tool-basic-$$
FOREIGN=tool-basic-$$-foreign
TMP=$(mktemp -d) || exit 99

cleanup() {
	local n
	for n in v a l r s s1 twice mode msem; do
		"$SHMKIT" rm "$P.$n" >/dev/null 2>&1
	done
	rm -f "/dev/shm/$FOREIGN"
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
pass() {
	echo "ok: $*"
}

# run ARGS...: runs the tool; sets OUT, ERR and RC. Any death by signal is a failure.
run() {
	"$SHMKIT" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
	if [ "$RC" -ge 128 ]; then
		fail "shmkit $* crashed (exit $RC): $ERR"
	fi
}

# expect_rc WANT ARGS...
expect_rc() {
	local want=$1
	shift
	run "$@"
	if [ "$RC" -eq "$want" ]; then
		pass "shmkit $* -> exit $RC"
	else
		fail "shmkit $* -> exit $RC, want $want (stderr: $ERR)"
	fi
}

# A usage error exits 2 with exactly one line on stderr that names the bad argument.
expect_usage() {
	local bad=$1
	shift
	expect_rc 2 "$@"
	if [ "$(printf '%s\n' "$ERR" | wc -l)" -ne 1 ] || [[ "$ERR" != *"$bad"* ]]; then
		fail "shmkit $*: usage error should be one line naming '$bad', got: $ERR"
	fi
}

# json_num JSON KEY: the number stored under KEY.
json_num() {
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.e+-]*\).*/\1/p"
}
# json_str JSON KEY: the string stored under KEY.
json_str() {
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"
}
# text_field TEXT LABEL: the value after "LABEL:" in stat's text output.
text_field() {
	printf '%s\n' "$1" | sed -n "s/^$2: *//p"
}

# check WHAT GOT WANT
check() {
	if [ "$2" = "$3" ]; then
		pass "$1 = $3"
	else
		fail "$1 = '$2', want '$3'"
	fi
}

# --- version and help ------------------------------------------------------------------------
expect_rc 0 --version
[[ "$OUT" =~ ^shmkit\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version printed '$OUT'"
expect_rc 0 --help
[[ "$OUT" == *race* && "$OUT" == *stat* ]] || fail "--help does not list the commands"
for c in race bank demo create rm ls stat; do
	expect_rc 0 "$c" --help
	[ -n "$OUT" ] || fail "$c --help printed nothing on stdout"
done

# --- race and bank -----------------------------------------------------------------------------
for mode in atomic lock sem; do
	expect_rc 0 race --procs 4 --iters 20000 --mode "$mode" --json
	check "race $mode expected" "$(json_num "$OUT" expected)" 80000
	check "race $mode actual" "$(json_num "$OUT" actual)" 80000
	check "race $mode lost" "$(json_num "$OUT" lost)" 0
	check "race $mode mode" "$(json_str "$OUT" mode)" "$mode"
	[ -n "$(json_num "$OUT" seconds)" ] || fail "race $mode: no seconds in $OUT"
	[ -n "$(json_num "$OUT" increments_per_s)" ] || fail "race $mode: no increments_per_s"
done
for mode in racy sem2; do
	expect_rc 0 race --procs 4 --iters 20000 --mode "$mode" --json
	actual=$(json_num "$OUT" actual)
	lost=$(json_num "$OUT" lost)
	if [ -z "$actual" ] || [ "$actual" -gt 80000 ] || [ "$actual" -lt 1 ] ||
	   [ "$lost" -ne $((80000 - actual)) ]; then
		fail "race $mode: actual '$actual' lost '$lost' (want 1..80000, lost = 80000 - actual)"
	else
		pass "race $mode: actual $actual <= 80000, lost $lost"
	fi
done
expect_rc 0 race --procs 2 --iters 1000
[[ "$OUT" == *"Expected counter value: 2000, Actual: 2000"* ]] || fail "race text output: $OUT"
for mode in lock atomic sem; do
	expect_rc 0 bank --procs 4 --iters 20000 --mode "$mode" --json
	check "bank $mode balance" "$(json_num "$OUT" balance)" 0
	check "bank $mode expected" "$(json_num "$OUT" expected)" 0
	[ -n "$(json_num "$OUT" ops_per_s)" ] || fail "bank $mode: no ops_per_s in $OUT"
done
expect_rc 0 demo --quick
[[ "$OUT" == *"Expected counter value: 40000, Actual: 40000"* ]] || fail "demo output: $OUT"
[[ "$OUT" == *"Final balance: 0 (expected 0)"* ]] || fail "demo bank output: $OUT"
# The race's objects are gone afterwards.
if ls /dev/shm | grep -q "^shmkit-race-"; then
	sleep 1 # another test's race may be running; ours are long finished
	ls /dev/shm | grep "^shmkit-race-" | while read -r n; do
		pid=${n#shmkit-race-}
		pid=${pid%%-*}
		kill -0 "$pid" 2>/dev/null || echo "leftover: $n"
	done | grep -q leftover && fail "race left objects behind in /dev/shm"
fi

# --- create, stat, ls, rm ----------------------------------------------------------------------
expect_rc 0 create value "$P.v" --init -7
expect_rc 0 stat "$P.v"
check "value kind" "$(text_field "$OUT" kind)" value
check "value value" "$(text_field "$OUT" value)" -7
check "value lock holder" "$(text_field "$OUT" "lock holder")" free
check "value owner deaths" "$(text_field "$OUT" "owner deaths")" 0
check "value creator" "$([ -n "$(text_field "$OUT" "creator pid")" ] && echo yes)" yes
expect_rc 0 stat --json "$P.v"
check "value json name" "$(json_str "$OUT" name)" "$P.v"
check "value json value" "$(json_num "$OUT" value)" -7
check "value json mode" "$(json_str "$OUT" mode)" 0600

expect_rc 0 create array "$P.a" --size 5
expect_rc 0 stat --json "$P.a"
check "array kind" "$(json_str "$OUT" kind)" array
check "array len" "$(json_num "$OUT" len)" 5

expect_rc 0 create lock "$P.l"
expect_rc 0 stat "$P.l"
check "lock kind" "$(text_field "$OUT" kind)" lock
check "lock recursive" "$(text_field "$OUT" recursive)" no
check "lock holder" "$(text_field "$OUT" "lock holder")" free
expect_rc 0 stat --json "$P.l"
check "lock json holder" "$(json_num "$OUT" holder)" 0

expect_rc 0 create rlock "$P.r"
expect_rc 0 stat --json "$P.r"
check "rlock kind" "$(json_str "$OUT" kind)" lock
[[ "$OUT" == *'"recursive":true'* ]] || fail "rlock is not recursive: $OUT"

expect_rc 0 create sem "$P.s" --bounded --init 3
expect_rc 0 stat "$P.s"
check "sem kind" "$(text_field "$OUT" kind)" sem
check "sem count" "$(text_field "$OUT" count)" 3
check "sem bounded" "$(text_field "$OUT" bounded)" yes
expect_rc 0 create sem "$P.s1"
expect_rc 0 stat --json "$P.s1"
check "sem default count" "$(json_num "$OUT" value)" 1
[[ "$OUT" == *'"bounded":false'* ]] || fail "plain sem reported bounded: $OUT"

expect_rc 0 create value "$P.twice"
expect_rc 1 create value "$P.twice"
[[ "$ERR" == *"$P.twice"* ]] || fail "create twice: message does not name the object: $ERR"
expect_rc 1 create lock "$P.twice"

expect_rc 0 ls
for n in v a l r s s1 twice; do
	printf '%s\n' "$OUT" | grep -q "^$P\.$n " || fail "ls does not list $P.$n"
done
printf '%s\n' "$OUT" | grep -q "sem\.$P" && fail "ls lists a sem.* file"
expect_rc 0 ls --json
[[ "$OUT" == "["*"]" && "$OUT" == *"\"name\":\"$P.s\""* ]] || fail "ls --json: $OUT"

expect_rc 0 rm "$P.v" "$P.a" "$P.l" "$P.r" "$P.s" "$P.s1" "$P.twice"
[ -e "/dev/shm/sem.${P#/}.s.sem" ] && fail "rm left the semaphore of $P.s behind"
expect_rc 0 ls
printf '%s\n' "$OUT" | grep -q "^$P\." && fail "ls still lists removed objects: $OUT"
expect_rc 1 stat "$P.v"
expect_rc 1 rm "$P.v"
expect_rc 1 rm "$P.gone1" "$P.gone2"
[ "$(printf '%s\n' "$ERR" | grep -c 'no such object')" -eq 2 ] ||
	fail "rm of two missing names: want 2 messages: $ERR"

# A file that is not a shmkit region is neither listed nor removed.
printf 'not a shmkit region, just some bytes in shared memory..........................\n%.0s' \
	1 2 3 >"/dev/shm/$FOREIGN"
expect_rc 1 rm "/$FOREIGN"
[ -e "/dev/shm/$FOREIGN" ] || fail "rm removed a foreign file"
expect_rc 1 stat "/$FOREIGN"
expect_rc 0 ls
printf '%s\n' "$OUT" | grep -q "$FOREIGN" && fail "ls lists a foreign file"

# --- exact mode under a umask --------------------------------------------------------------------
(umask 077 && "$SHMKIT" create value "$P.mode" --mode 0640) || fail "create --mode 0640"
expect_rc 0 stat "$P.mode"
check "mode under umask 077 (stat)" "$(text_field "$OUT" mode)" 0640
expect_rc 0 ls
check "mode under umask 077 (ls)" \
	"$(printf '%s\n' "$OUT" | awk -v n="$P.mode" '$1 == n { print $4 }')" 0640
(umask 077 && "$SHMKIT" create sem "$P.msem" --mode 0640) || fail "create sem --mode 0640"
check "semaphore file mode" "$(stat -c %a "/dev/shm/sem.${P#/}.msem.sem" 2>&1)" 640
expect_rc 0 rm "$P.mode" "$P.msem"

# --- bad input ---------------------------------------------------------------------------------
expect_usage bogus-command bogus-command
expect_usage --bogus race --bogus
expect_usage -x race -x
expect_usage --procs race --procs
expect_usage 0 race --procs 0
expect_usage abc race --procs abc
expect_usage 99999999999999999999999 race --procs 99999999999999999999999
expect_usage bogus race --mode bogus
expect_usage -5 race --iters -5
expect_usage stray race stray
expect_usage 3 bank --procs 3
expect_usage sem2 bank --mode sem2
expect_usage noslash create value noslash
expect_usage /a/b create value /a/b
expect_usage /sem.x create value /sem.x
expect_usage frob create frob "$P.x"
expect_usage --size create value "$P.x" --size 3
expect_usage --size create array "$P.x"
expect_usage 1x create value "$P.x" --init 1x
expect_usage -1 create sem "$P.x" --init -1
expect_usage 999 create value "$P.x" --mode 999
expect_usage noslash stat noslash
expect_usage /a/b rm /a/b
expect_usage NAME rm
expect_usage extra ls extra
expect_usage --fast demo --fast
expect_rc 1 stat "$P.missing"
[ -e "/dev/shm/${P#/}.x" ] && fail "a rejected create left $P.x behind"

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
exit 0
