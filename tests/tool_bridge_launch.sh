#!/bin/bash
# tool_bridge_launch: the bridge is a program of its own. The core shmkit links no libzmq;
# `shmkit bridge ARGS` runs shmkit-bridge ARGS (found next to shmkit, or in SHMKIT_EXEC_PATH)
# with its arguments, exit status and output untouched; without it, `shmkit bridge` says
# clearly that it is not installed (and why) and exits 1; `shmkit bench --only bridge` gets its
# rows from shmkit-bridge, or says it is not installed.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
TMP=$(mktemp -d) || exit 99
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# The real binary (libtool puts it in .libs and a wrapper script in its place).
real=$(dirname "$SHMKIT")/.libs/$(basename "$SHMKIT")
[ -x "$real" ] || real=$SHMKIT
if command -v readelf >/dev/null 2>&1; then
	needed=$(readelf -d "$real" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
	case $needed in
	*zmq*) fail "shmkit links libzmq: $needed" ;;
	*) pass "shmkit links only: $needed" ;;
	esac
else
	echo "skip: no readelf"
fi

# Not installed: an empty exec path.
mkdir "$TMP/empty"
SHMKIT_EXEC_PATH=$TMP/empty "$SHMKIT" bridge send /x tcp://127.0.0.1:1 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && grep -q "shmkit-bridge, the ZeroMQ bridge, is not installed (looked in $TMP/empty)" "$TMP/err" &&
	[ ! -s "$TMP/out" ] && pass "not installed: exit 1: $(cat "$TMP/err")" ||
	fail "not installed: exit $rc: $(cat "$TMP/err")"
SHMKIT_EXEC_PATH=$TMP/empty "$SHMKIT" bridge --help >"$TMP/out" 2>&1
rc=$?
[ $rc = 0 ] && grep -q "not installed" "$TMP/out" && pass "not installed: --help says so, exit 0" ||
	fail "not installed: --help: exit $rc: $(cat "$TMP/out")"
SHMKIT_EXEC_PATH=$TMP/empty "$SHMKIT" bench --quick --only bridge --json >"$TMP/bench" 2>"$TMP/err"
rc=$?
[ $rc = 0 ] && [ "$(grep -o '"unsupported": *"shmkit-bridge (the ZeroMQ bridge) is not installed"' "$TMP/bench" | wc -l)" = 2 ] &&
	pass "bench --only bridge without shmkit-bridge: two rows saying it is not installed" ||
	fail "bench --only bridge without shmkit-bridge: exit $rc: $(cat "$TMP/bench" "$TMP/err")"

if [ ! -x "${SHMKIT_BRIDGE:-}" ]; then
	# Built without libzmq: the message says so.
	"$SHMKIT" bridge recv tcp://127.0.0.1:1 /x 2>"$TMP/err"
	rc=$?
	[ $rc = 1 ] && grep -q "built without ZeroMQ" "$TMP/err" && pass "built without ZeroMQ: $(cat "$TMP/err")" ||
		fail "built without ZeroMQ: exit $rc: $(cat "$TMP/err")"
	[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
	echo "SKIP: the rest needs shmkit-bridge (built without libzmq)"
	exit 77
fi

# Found next to shmkit (the build tree): arguments, output and status pass through.
out=$("$SHMKIT" bridge --version)
[ "$out" = "$("$SHMKIT_BRIDGE" --version)" ] && [[ $out == "shmkit-bridge "* ]] &&
	pass "shmkit bridge --version runs shmkit-bridge: $out" || fail "--version: '$out'"
"$SHMKIT" bridge send /x 'tcp://127.0.0.1' 2>"$TMP/err"
rc=$?
[ $rc = 2 ] && grep -q "bad endpoint 'tcp://127.0.0.1'" "$TMP/err" && pass "usage error passes through: exit 2" ||
	fail "usage error: exit $rc: $(cat "$TMP/err")"
(cd "$TMP" && "$SHMKIT" bridge keygen 'a key') >/dev/null && [ -f "$TMP/a key.key" ] &&
	pass "an argument with a space arrives whole" || fail "keygen 'a key'"
# Found through SHMKIT_EXEC_PATH.
mkdir "$TMP/exec" && ln -s "$SHMKIT_BRIDGE" "$TMP/exec/shmkit-bridge"
SHMKIT_EXEC_PATH=$TMP/exec "$SHMKIT" bridge --help >"$TMP/out" && grep -q "bridge recv ENDPOINT NAME" "$TMP/out" &&
	pass "SHMKIT_EXEC_PATH: found there" || fail "SHMKIT_EXEC_PATH: $(cat "$TMP/out")"
# bench's rows come from shmkit-bridge bench.
"$SHMKIT" bench --quick --only bridge --json >"$TMP/bench" 2>"$TMP/err"
rc=$?
n=$(grep -o '"transport": *"\(zmq\|bridge\)", *"test": *"bridge".*"msgs_per_s": *[1-9]' "$TMP/bench" | wc -l)
[ $rc = 0 ] && [ "$n" = 2 ] && ! grep -q '"error"\|"unsupported"' "$TMP/bench" &&
	pass "bench --only bridge: zmq and bridge rows measured by shmkit-bridge" ||
	fail "bench --only bridge: exit $rc, $n rows: $(cat "$TMP/bench" "$TMP/err")"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all launch checks passed"
