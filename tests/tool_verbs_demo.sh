#!/bin/bash
# tool_verbs_demo: `shmkit demo --list` names every section and each new lesson runs alone as
# separate processes and says what it shows: the deadlock is seen and then avoided by one order,
# a Semaphore(3) admits at most 3 and a Lock 1, notify(1) leaves one consumer waiting, the
# Event ends the consumers with every item taken, the Pipe ends in EOF.
. "$(dirname "$0")/tool_verbs.lib.sh"

run demo --list
check "demo --list" "$RC" 0
for s in counter bank semaphore deadlock condition event bakery dishes pipe; do
	grep -q "^$s " "$TMP/out" || fail "demo --list lacks $s"
done
run demo nosuchsection
check "an unknown section" "$RC" 2

# section NAME PATTERN...: the section alone exits 0 and prints every pattern (grep -E).
section() {
	local name=$1 pat
	shift
	run demo --quick "$name"
	check "demo $name" "$RC:$ERR" "0:"
	for pat in "$@"; do
		grep -Eq -- "$pat" "$TMP/out" && pass "demo $name says /$pat/" ||
			fail "demo $name lacks /$pat/: $OUT"
	done
}

section deadlock "Process 2 (backs off|: deadlock detected)|deadlock" "one global order" \
	"Process 1 has acquired lock1, then lock2 \(round 2\)" \
	"Process 2 has acquired lock1, then lock2 \(round 2\)"
section semaphore "Highest concurrency observed: Semaphore\(3\) [123], Lock 1, no guard ([1-9]|10)$"
section condition "consumer 1: consumed" "consumer 2: consumed" \
	"producer: 1 consumed, 1 still waiting"
[ "$(grep -c "consumed the resource" "$TMP/out")" -eq 4 ] && pass "condition: four consumptions" ||
	fail "condition: $(grep -c "consumed the resource" "$TMP/out") consumptions"
section event "Taken in all: 30 of 30"
section pipe "parent: received pong" "parent: received \['hello', 42, None\]" "EOF"

finish
