#!/bin/bash
# completion_check: the bash completion completes commands (from shmkit --help), a command's
# options (from its --help), kinds after `create`, ls columns, and object names in /dev/shm
# (without the sem.* files semaphores own); then, in a real interactive bash in tmux, each
# thing where it goes: verbs where the verb goes (not names), names after the verb, bridge
# verbs, demo sections, the block kind, bench tests and a verb's own options.
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
top=${srcdir:-$(dirname "$0")/..}
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
# shellcheck source=/dev/null
. "$top/bash-completion/shmkit" || exit 99

P=/completion-$$
SOCK=completion-$$
trap '"$SHMKIT" rm "$P.q" "$P.s" "$P.lk" >/dev/null 2>&1; tmux -L "$SOCK" kill-server 2>/dev/null' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# complete WORD...: complete the last word of "shmkit WORD..."; the candidates, sorted, in $GOT.
complete_() {
	COMP_WORDS=("$SHMKIT" "$@")
	COMP_CWORD=$#
	COMPREPLY=()
	_shmkit
	GOT=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
}

"$SHMKIT" create queue "$P.q" --capacity 2 --max-size 8 && "$SHMKIT" create sem "$P.s" || exit 1
complete_ st
[ "$GOT" = "stat " ] || fail "commands: 'st' -> $GOT"
complete_ t
[[ "$GOT" == *"top "*"torture "* ]] || fail "commands: 't' -> $GOT"
complete_ ls --no
[ "$GOT" = "--noheadings " ] || fail "ls options: $GOT"
complete_ create qu
[ "$GOT" = "queue " ] || fail "create kinds: $GOT"
complete_ stat "$P."
[ "$GOT" = "$P.q $P.s " ] || fail "object names: $GOT"
complete_ ls -o NAME,DE
[[ "$GOT" == *"NAME,DEATHS "*"NAME,DEPTH "* ]] || fail "ls columns: $GOT"
complete_ top --sort d
[ "$GOT" = "deaths depth " ] || fail "top --sort: $GOT"
[ $failures -eq 0 ] && echo "ok: commands, options, kinds, columns and object names complete"

# --- a real interactive bash in tmux ----------------------------------------------------------
if ! command -v tmux >/dev/null; then
	echo "skip: no tmux for the interactive checks"
	[ $failures -eq 0 ] || exit 1
	exit 0
fi
"$SHMKIT" create lock "$P.lk" || exit 1
bin=$(cd "$(dirname "$SHMKIT")" && pwd)
comp=$(cd "$top" && pwd)/bash-completion/shmkit
tmux -L "$SOCK" new-session -d -x 220 -y 50 "env -i HOME=/tmp TERM=xterm PATH=$bin:/usr/bin:/bin bash --norc --noprofile -i" ||
	{ echo "SKIP: tmux cannot start a session"; exit 77; }
pane() { tmux -L "$SOCK" capture-pane -p -J | sed '/^$/d'; }
tmux -L "$SOCK" send-keys "PS1='$ '; . '$comp'; bind 'set show-all-if-ambiguous on'; bind 'set completion-query-items 0'; clear" Enter
sleep 1
# tab TYPED WANT: type TYPED, press Tab, and look for WANT (a regex) on the screen.
tab() {
	local n
	tmux -L "$SOCK" send-keys C-u "clear" Enter
	sleep 0.3
	tmux -L "$SOCK" send-keys -l "$1"
	tmux -L "$SOCK" send-keys Tab
	for n in $(seq 40); do
		pane | grep -qE -- "$2" && { echo "ok: '$1<TAB>' -> $(pane | tail -2 | tr '\n' '|')"; return; }
		sleep 0.1
	done
	fail "'$1<TAB>': want /$2/, screen: $(pane | tail -3 | tr '\n' '|')"
}
tab "shmkit lock " "holder +run"
tab "shmkit lock r" '^\$ shmkit lock run $'
tab "shmkit lock holder ${P}.l" "^\\$ shmkit lock holder ${P}\\.lk $"
tab "shmkit bridge s" '^\$ shmkit bridge send $'
tab "shmkit demo dea" '^\$ shmkit demo deadlock $'
tab "shmkit create bl" '^\$ shmkit create block $'
tab "shmkit bench --only lo" "loan +lock"
tab "shmkit value add --rep" '^\$ shmkit value add --repeat $'
tab "shmkit sem acquire --non" '^\$ shmkit sem acquire --nonblock $'
tab "shmkit consume ${P}.q --a" '--ack'
tmux -L "$SOCK" send-keys C-u "exit" Enter
[ $failures -eq 0 ] || exit 1
