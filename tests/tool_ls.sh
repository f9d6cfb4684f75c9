#!/bin/bash
# tool_ls: `shmkit ls` as lsipc: column choice (-o LIST, -o +LIST), --noheadings, --raw,
# --json, --bytes; per-kind state; the processes mapping an object (a blocked producer is
# seen, an idle object shows 0); leftovers (a FIFO, an orphan sem.NAME.sem) are
# listed, and ls never blocks on the FIFO; foreign files only with --all; bad input refused.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }

P=/tool-ls-$$
F=${P#/}
TMP=$(mktemp -d) || exit 99
producer=
cleanup() {
	[ -n "$producer" ] && kill "$producer" 2>/dev/null && wait "$producer" 2>/dev/null
	for n in q l s b v; do "$SHMKIT" rm "$P.$n" >/dev/null 2>&1; done
	rm -f "/dev/shm/$F.fifo" "/dev/shm/$F.empty" "/dev/shm/sem.$F.gone.sem" "/dev/shm/$F.foreign"
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# ls ARGS...: run ls with a deadline (it must never block), output in $OUT, status in $RC.
ls_() { OUT=$(timeout 20 "$SHMKIT" ls "$@" 2>"$TMP/err"); RC=$?; }
# row NAME: the line of $OUT for NAME.
row() { printf '%s\n' "$OUT" | awk -v n="$1" '$1 == n'; }

"$SHMKIT" create queue "$P.q" --capacity 2 --max-size 16 &&
	"$SHMKIT" create lock "$P.l" && "$SHMKIT" create sem "$P.s" --init 3 &&
	"$SHMKIT" create barrier "$P.b" --parties 4 && "$SHMKIT" create value "$P.v" --init 42 ||
	{ echo "FAIL: create"; exit 1; }
mkfifo "/dev/shm/$F.fifo" || exit 99
: >"/dev/shm/$F.empty"
: >"/dev/shm/sem.$F.gone.sem"
head -c 4096 /dev/urandom >"/dev/shm/$F.foreign"

# A producer blocked on the full queue: it maps the queue, and the queue shows it waiting.
yes | "$SHMKIT" produce "$P.q" & # killed by cleanup
producer=$!
for _ in $(seq 100); do
	ls_ -o NAME,WAITING "$P.q"
	[ "$(row "$P.q" | awk '{print $2}')" = 1 ] && break
	sleep 0.1
done

# --- default table ---------------------------------------------------------------------------
ls_
[ $RC -eq 0 ] || fail "ls exit $RC: $(cat "$TMP/err")"
[ "$(printf '%s\n' "$OUT" | head -1 | tr -s ' ')" = "NAME KIND SIZE PERMS OWNER ATTACHED STATE" ] ||
	fail "default header: $(printf '%s\n' "$OUT" | head -1)"
row "$P.q" | grep -q 'queue .* 1 2/2 queued, 1 writer, 1 participant, waiting 1 put 0 get' &&
	pass "queue: depth, writers, participants, waiting producer, 1 process attached" ||
	fail "queue row: $(row "$P.q")"
row "$P.l" | grep -q ' lock .* 0 free$' && pass "idle lock: free, nobody attached" ||
	fail "lock row: $(row "$P.l")"
row "$P.s" | grep -q 'value 3$' || fail "sem row: $(row "$P.s")"
row "$P.b" | grep -q '0/4 waiting$' || fail "barrier row: $(row "$P.b")"
row "$P.v" | grep -q 'value 42, free$' || fail "value row: $(row "$P.v")"
row "$P.fifo" | grep -q '^'"$P"'.fifo *fifo .*not a regular file' &&
	pass "a FIFO is listed as a leftover, without blocking" || fail "fifo row: $(row "$P.fifo")"
[ -z "$(row "$P.empty")" ] || fail "an empty file (not a shmkit object) listed without --all"
row "/sem.$F.gone.sem" | grep -q "orphan semaphore: no region $P.gone" &&
	pass "an orphan semaphore file is listed" || fail "orphan sem: $OUT"
[ -z "$(row "$P.foreign")" ] || fail "a foreign file listed without --all"
ls_ --all
row "$P.foreign" | grep -qi 'not a shmkit region' && pass "--all lists foreign files" ||
	fail "--all foreign: $(row "$P.foreign")"
row "$P.empty" | grep -q 'no shmkit header: not a shmkit object' &&
	pass "--all lists an empty file as not a shmkit object" || fail "empty: $(row "$P.empty")"

# --- columns, headings, raw, bytes, json ------------------------------------------------------
ls_ -o NAME,KIND,ATTACHED,PIDS,DEPTH,CAPACITY,WRITERS,EOF --noheadings "$P.q" "$P.l"
[ "$(printf '%s\n' "$OUT" | tr -s ' ')" = "$(printf '%s\n' "$P.l lock 0 - - - - -" \
	"$P.q queue 1 $producer 2 2 1 0")" ] && pass "-o columns, --noheadings, PIDS" ||
	fail "-o: $OUT"
ls_ -o +HOLDER,VALUE -n "$P.s"
[ "$(printf '%s\n' "$OUT" | awk '{print $NF, $(NF-1)}')" = "3 -" ] || fail "-o +LIST: $OUT"
ls_ --raw -o NAME,STATE "$P.s" "$P.b"
[ "$OUT" = "$(printf 'NAME STATE\n%s value\\x203\n%s 0/4\\x20waiting' "$P.b" "$P.s" |
	sort -r)" ] || [ "$OUT" = "$(printf 'NAME STATE\n%s 0/4\\x20waiting\n%s value\\x203' \
	"$P.b" "$P.s")" ] && pass "--raw escapes spaces" || fail "--raw: $OUT"
ls_ -o SIZE -n "$P.q"
human=$OUT
ls_ -o SIZE -n --bytes "$P.q"
[ "$OUT" -eq "$(stat -c %s "/dev/shm/$F.q")" ] && [[ "$human" == *K ]] &&
	pass "--bytes: $OUT; default: $human" || fail "sizes: $human / $OUT"
ls_ --json -o name,depth,holder "$P.q" "$P.l"
[ "$OUT" = "[{\"name\":\"$P.l\",\"depth\":null,\"holder\":0},{\"name\":\"$P.q\",\"depth\":2,\"holder\":null}]" ] &&
	pass "--json -o" || fail "--json -o: $OUT"
ls_ --json "$P.q"
[[ "$OUT" == *"\"producers_waiting\":1"*"\"eof\":false"*"\"attached\":1,\"pids\":[$producer]"* ]] ||
	fail "--json: $OUT"

# --- bad input ---------------------------------------------------------------------------------
ls_ -o NAME,BOGUS
[ $RC -eq 2 ] && grep -q "BOGUS" "$TMP/err" || fail "unknown column: rc $RC $(cat "$TMP/err")"
ls_ --raw --json
[ $RC -eq 2 ] || fail "--raw --json: rc $RC"
ls_ bad-name
[ $RC -eq 2 ] || fail "bad name: rc $RC"
ls_ "$P.missing" "$P.l"
[ $RC -eq 1 ] && grep -q "$P.missing" "$TMP/err" && [ -n "$(row "$P.l")" ] &&
	pass "a missing NAME: exit 1, the others still listed" || fail "missing: rc $RC $OUT"

[ $failures -eq 0 ] || exit 1
