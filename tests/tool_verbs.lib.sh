# Sourced by the tool_verbs_*.sh tests: the tool, a scratch directory, unique object names
# (prefix $P, pid included), cleanup on exit, and small assertion helpers.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
	echo "SKIP: no writable /dev/shm"
	exit 77
fi

P=/$(basename "$0" .sh)-$$
TMP=$(mktemp -d) || exit 99
OBJECTS=()
BACKGROUND=()

cleanup() {
	local pid n
	for pid in "${BACKGROUND[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	for n in "${OBJECTS[@]}"; do "$SHMKIT" rm "$n" >/dev/null 2>&1; done
	rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
finish() {
	[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
	exit 0
}

# make KIND NAME [OPTIONS...]: create an object and remember to remove it.
make_obj() {
	OBJECTS+=("$2")
	"$SHMKIT" create "$@" || fail "create $*"
}

# bg CMD...: run in the background, killed at exit if still running; its pid in BG.
bg() {
	"$@" &
	BG=$!
	BACKGROUND+=("$BG")
}

# wait_until SECONDS CMD...: poll CMD every 0.05 s until it succeeds; 1 if time ran out.
wait_until() {
	local limit=$(($1 * 20)) i=0
	shift
	until "$@"; do
		i=$((i + 1))
		[ $i -ge $limit ] && return 1
		sleep 0.05
	done
	return 0
}

# gone PID: true when the process has exited (and was reaped, or is not our child).
gone() { ! kill -0 "$1" 2>/dev/null; }

# check WHAT GOT WANT
check() {
	if [ "$2" = "$3" ]; then pass "$1 = $3"; else fail "$1 = '$2', want '$3'"; fi
}

# run ARGS...: the tool; OUT, ERR and RC set. A death by signal other than the ones a test
# sends is a crash.
run() {
	"$SHMKIT" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

# blocked PID: the process is the shmkit binary itself (not a wrapper script yet to exec it)
# and sleeps: it is in its wait.
blocked() {
	local state
	case $(readlink "/proc/$1/exe" 2>/dev/null) in
	*shmkit) ;;
	*) return 1 ;;
	esac
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ "$state" = S ]
}
