#!/bin/bash
# man_examples: every family page of section 3 (each page that is not a '.so' alias) has an
# EXAMPLES section holding a whole program, and that program compiles against the built
# library and runs to exit status 0. Object names in the examples get a unique suffix, so runs
# never meet each other's (or a user's) objects.
set -u

top=${srcdir:-.}
: "${SHMKIT_LIB:?SHMKIT_LIB must name the built libshmkit.so}"
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
CC=${CC:-cc}
command -v "${CC%% *}" >/dev/null || { echo "SKIP: no C compiler"; exit 77; }
libdir=$(dirname "$SHMKIT_LIB")
builddir=$(cd "$libdir/../.." && pwd)
TMP=$(mktemp -d) || exit 99
trap 'rm -rf "$TMP"' EXIT
problems=0
problem() { echo "FAIL: $*"; problems=$((problems + 1)); }
pages=0

for page in "$top"/man/*.3; do
	head -1 "$page" | grep -q '^\.so' && continue
	pages=$((pages + 1))
	base=$(basename "$page" .3)
	if ! grep -q '^\.SH EXAMPLES' "$page"; then
		problem "$base(3) has no EXAMPLES section"
		continue
	fi
	# The .nf ... .fi block of EXAMPLES, troff escapes undone, names made unique.
	sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$page" | sed -n '/^\.nf/,/^\.fi/p' | sed '1d;$d' |
		sed -e 's/\\e/\\/g' -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" \
			-e "s|\"/\([A-Za-z0-9._-]*\)\"|\"/\1-mex-$$\"|g" >"$TMP/$base.c"
	grep -q 'int main' "$TMP/$base.c" || { problem "$base(3): EXAMPLES holds no program"; continue; }
	if ! $CC -Wall -Werror -I"$top/lib" -I"$builddir/lib" -o "$TMP/$base" "$TMP/$base.c" \
		-L"$libdir" -lshmkit -lpthread 2>"$TMP/$base.err"; then
		problem "$base(3): the example does not compile: $(head -5 "$TMP/$base.err")"
		continue
	fi
	if LD_LIBRARY_PATH=$libdir timeout 60 "$TMP/$base" >"$TMP/$base.out" 2>&1; then
		echo "ok: $base(3): $(head -1 "$TMP/$base.out")"
	else
		problem "$base(3): the example exited $?: $(cat "$TMP/$base.out")"
	fi
done
echo "checked $pages family pages"
[ $problems -eq 0 ] || { echo "$problems problem(s)"; exit 1; }
exit 0
