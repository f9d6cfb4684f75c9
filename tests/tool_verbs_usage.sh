#!/bin/bash
# tool_verbs_usage: every verb answers --help on stdout; usage errors exit 2 with one line naming
# the bad argument; a missing object or one of the wrong kind exits 1 naming the kind it is;
# nothing crashes on bad input.
. "$(dirname "$0")/tool_verbs.lib.sh"

make_obj lock "$P.lock"
make_obj sem "$P.sem" --init 1
make_obj event "$P.event"
make_obj array "$P.array" --size 2

# expect_rc WANT ARGS...
expect_rc() {
	local want=$1
	shift
	run "$@"
	[ "$RC" -ge 128 ] && fail "shmkit $* crashed (exit $RC): $ERR"
	if [ "$RC" -eq "$want" ]; then pass "shmkit $* -> $RC"; else fail "shmkit $* -> $RC, want $want ($ERR)"; fi
}
# expect_usage BAD ARGS...: exit 2, one line on stderr naming BAD.
expect_usage() {
	local bad=$1
	shift
	expect_rc 2 "$@"
	if [ "$(printf '%s\n' "$ERR" | wc -l)" -ne 1 ] || [[ "$ERR" != *"$bad"* ]]; then
		fail "shmkit $*: want one line naming '$bad', got: $ERR"
	fi
}

for kv in "lock run holder" "rlock run holder" "sem acquire release value run" \
	"event set clear wait is-set" "cond notify wait" "barrier wait reset abort" \
	"value get set add cas" "array get set add cas" "pipe send recv" "queue join"; do
	set -- $kv
	kind=$1
	shift
	expect_rc 0 "$kind" --help
	for verb in "$@"; do
		[[ "$OUT" == *"$verb"* ]] || fail "$kind --help does not list $verb"
	done
	for verb in "$@"; do
		expect_rc 0 "$kind" "$verb" --help
		[[ "$OUT" == Usage:* ]] || fail "$kind $verb --help: $OUT"
	done
	expect_usage VERB "$kind"
	expect_usage frobnicate "$kind" frobnicate
	expect_usage NAME "$kind" "$1"
done

expect_usage "bad name" sem value no-slash
expect_usage "--timeout" sem acquire "$P.sem" --timeout soon
expect_usage "--timeout" lock run "$P.lock" --timeout -1 -- true
expect_usage "--conflict-exit-code" lock run "$P.lock" -E 256 -- true
expect_usage "command" lock run "$P.lock"
expect_usage "command" sem run "$P.sem" --
expect_usage "--bogus" lock run "$P.lock" --bogus -- true
expect_usage "extra" event set "$P.event" extra
expect_usage "DELTA" value add "$P.array"
expect_usage "'x'" value set "$P.array" x
expect_usage "INDEX" array get "$P.array" -1
expect_usage "--end" pipe recv "$P.lock" --end 2
expect_usage "--end" pipe recv "$P.lock"
expect_usage "--all" cond notify "$P.lock" --n 1 --all
expect_usage "--exec" consume "$P.lock" --exec
expect_usage "--verify" consume "$P.lock" --verify --exec true

# wrong kind: exit 1, naming what it is
expect_rc 1 sem acquire "$P.lock"
[[ "$ERR" == *"is a lock, not a sem"* ]] || fail "wrong kind message: $ERR"
expect_rc 1 lock run "$P.sem" -- true
[[ "$ERR" == *"is a sem, not a lock"* ]] || fail "wrong kind message: $ERR"
expect_rc 1 event wait "$P.array"
[[ "$ERR" == *"is an array, not an event"* ]] || fail "wrong kind message: $ERR"
expect_rc 1 value get "$P.event"
[[ "$ERR" == *"is an event, not a value"* ]] || fail "wrong kind message: $ERR"
expect_rc 1 consume "$P.sem" --exec true
[[ "$ERR" == *"is a sem, not a queue"* ]] || fail "wrong kind message: $ERR"
for kv in "barrier wait" "cond wait" "pipe recv --end 0" "queue join" "array get"; do
	expect_rc 1 $kv "$P.sem"
	[[ "$ERR" == *"is a sem, not a"* ]] || fail "$kv on a sem: $ERR"
done
# missing
expect_rc 1 sem value "$P.missing"
expect_rc 1 lock run "$P.missing" -- true

finish
