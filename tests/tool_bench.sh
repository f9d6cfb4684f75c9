#!/bin/bash
# tool_bench: `shmkit bench --quick --json` runs to the end and prints well-formed JSON in which
# every transport (shmkit, shmkit-pipe, pipe, unix, mq) and every test (batch, loan and wake with
# their ratios too) has rows, and every
# figure is positive (CPU time and lost updates may be 0). Never checks speed. Also: usage
# errors exit 2 naming the bad argument.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
	echo "SKIP: no writable /dev/shm"
	exit 77
fi

TMP=$(mktemp -d) || exit 99
trap 'rm -rf "$TMP"' EXIT

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
pass() {
	echo "ok: $*"
}

# usage ARGS... NEEDLE: the tool must exit 2 and name NEEDLE on stderr.
usage() {
	local needle=${*: -1}
	"$SHMKIT" bench "${@:1:$#-1}" >"$TMP/uout" 2>"$TMP/uerr"
	local rc=$?
	if [ $rc -ne 2 ]; then
		fail "bench ${*:1:$#-1}: exit $rc, want 2"
	elif ! grep -qF -- "$needle" "$TMP/uerr"; then
		fail "bench ${*:1:$#-1}: stderr does not name '$needle': $(cat "$TMP/uerr")"
	else
		pass "bench ${*:1:$#-1} is a usage error naming '$needle'"
	fi
}

usage --only nosuchtest nosuchtest
usage --reps 0 --reps
usage --reps x1 x1
usage --only --only
usage --frobnicate --frobnicate
usage stray stray

"$SHMKIT" bench --help >"$TMP/help" 2>&1 && grep -q -- "--quick" "$TMP/help" ||
	fail "bench --help"

"$SHMKIT" bench --quick --json >"$TMP/out.json" 2>"$TMP/err"
rc=$?
if [ $rc -ne 0 ]; then
	fail "bench --quick --json: exit $rc: $(cat "$TMP/err")"
	echo "$failures failure(s)"
	exit 1
fi
pass "bench --quick --json ran"

if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' 2>/dev/null; then
	if python3 -m json.tool "$TMP/out.json" >/dev/null 2>"$TMP/jerr"; then
		pass "the JSON is well-formed (python3 -m json.tool)"
	else
		fail "malformed JSON: $(cat "$TMP/jerr")"
	fi
	python3 - "$TMP/out.json" <<'EOF' >"$TMP/check" 2>&1
import json, sys

doc = json.load(open(sys.argv[1]))
bad = []
if set(doc) != {"machine", "results"}:
    bad.append("top-level keys are %s" % sorted(doc))
m = doc.get("machine", {})
for k in ("nproc", "cpu", "kernel", "mq_maxmsg"):
    if k not in m:
        bad.append("machine has no %s" % k)
if not isinstance(m.get("nproc"), int) or m.get("nproc", 0) < 1:
    bad.append("machine.nproc is not a positive integer")
res = doc.get("results", [])
measured = [r for r in res if "unsupported" not in r]
for t in ("shmkit", "shmkit-pipe", "pipe", "unix", "mq"):
    for test in ("throughput", "rtt"):
        if not any(r.get("transport") == t and r.get("test") == test for r in measured):
            bad.append("no %s %s row" % (t, test))
for t in ("shmkit", "shmkit-pipe", "pipe", "unix"):
    if not any(r.get("transport") == t and r.get("test") == "large" for r in measured):
        bad.append("no %s large row" % t)
for test in ("counter", "lock", "sem", "idle", "batch", "loan", "wake"):
    if not any(r.get("test") == test for r in measured):
        bad.append("no %s row" % test)
# The new ways carry their ratio to the old one measured in the same run.
for test, mode in (("batch", "batch32"), ("loan", "loan"), ("wake", "handoff")):
    if not any(r.get("test") == test and r.get("mode") == mode and "ratio" in r
               for r in measured):
        bad.append("no %s %s row with a ratio" % (test, mode))
if not any(r.get("test") == "wake" and "wakeups_per_msg" in r and "csw_per_msg" in r
           for r in measured):
    bad.append("no wake row with wakeups_per_msg and csw_per_msg")
may_be_zero = {"cpu_s", "cpu_pct", "lost"}
figures = {"msgs_per_s", "mb_per_s", "p50_ns", "p99_ns", "p999_ns", "msgs_per_s_min",
           "msgs_per_s_max", "p50_ns_min", "p50_ns_max", "ops_per_s", "ns_per_op",
           "handoffs_per_s", "cpu_s", "cpu_pct", "seconds", "lost", "size", "producers",
           "consumers", "round_trips", "reps", "ratio", "csw_per_msg", "wakeups_per_msg"}
for r in res:
    name = "%s %s %s" % (r.get("transport"), r.get("test"), r.get("size", r.get("mode", "")))
    if "error" in r:
        bad.append("%s failed: %s" % (name, r["error"]))
    if "unsupported" in r:
        continue
    want = {"throughput": ("msgs_per_s", "mb_per_s"), "rtt": ("p50_ns", "p99_ns", "p999_ns"),
            "counter": ("ops_per_s", "ns_per_op"), "lock": ("ns_per_op",),
            "sem": ("ns_per_op",), "idle": ("cpu_s",), "batch": ("msgs_per_s",),
            "loan": ("msgs_per_s",), "bridge": ("msgs_per_s",),
            "large": ("msgs_per_s", "mb_per_s"),
            "wake": ("csw_per_msg",) if r.get("mode") == "herd" else ("p50_ns",)}.get(r.get("test"))
    if want is None:
        bad.append("%s: unknown test" % name)
        continue
    for k in want:
        if k not in r:
            bad.append("%s: no %s" % (name, k))
    for k, v in r.items():
        if k not in figures:
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            bad.append("%s: %s is not a number" % (name, k))
        elif v < 0 or (v == 0 and k not in may_be_zero):
            bad.append("%s: %s = %s" % (name, k, v))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
EOF
	if [ $? -eq 0 ]; then
		pass "every transport and test present, every figure positive"
	else
		fail "$(cat "$TMP/check")"
	fi
else
	# No python3: a structural check with grep. Braces and brackets must balance, the two
	# top-level keys must be there, and so must each transport with a figure.
	J=$(tr -d '\n' <"$TMP/out.json")
	case $J in
	'{"machine":{'*'"results":['*']}') pass "JSON shape (no python3: grep check)" ;;
	*) fail "JSON does not look like {\"machine\":{...},\"results\":[...]}" ;;
	esac
	opens=$(tr -cd '{[' <<<"$J" | wc -c)
	closes=$(tr -cd '}]' <<<"$J" | wc -c)
	[ "$opens" -eq "$closes" ] || fail "unbalanced braces: $opens opened, $closes closed"
	for t in shmkit shmkit-pipe pipe unix mq; do
		grep -q "\"transport\":\"$t\",\"test\":\"throughput\"[^}]*\"msgs_per_s\":" \
			"$TMP/out.json" || fail "no $t throughput figure"
		grep -q "\"transport\":\"$t\",\"test\":\"rtt\"[^}]*\"p50_ns\":" "$TMP/out.json" ||
			fail "no $t rtt figure"
	done
	if grep -Eq '"(msgs_per_s|mb_per_s|p50_ns|p99_ns|p999_ns|ops_per_s|ns_per_op|handoffs_per_s|seconds)":(-|0(\.0*)?[,}])' \
		"$TMP/out.json"; then
		fail "a figure is zero or negative"
	fi
	grep -q '"error":' "$TMP/out.json" && fail "a measurement failed"
fi

if [ $failures -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
exit 0
