#!/bin/bash
# completion_check: the bash completion completes commands (from shmkit --help), a command's
# options (from its --help), kinds after `create`, ls columns, and object names in /dev/shm
# (without the sem.* files semaphores own).
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
top=${srcdir:-$(dirname "$0")/..}
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
# shellcheck source=/dev/null
. "$top/bash-completion/shmkit" || exit 99

P=/completion-$$
trap '"$SHMKIT" rm "$P.q" "$P.s" >/dev/null 2>&1' EXIT
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
[ $failures -eq 0 ] || exit 1
