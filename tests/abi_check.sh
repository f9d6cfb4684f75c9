#!/bin/sh
# The ABI written down: every function lib/shmkit.h declares is listed in lib/libshmkit.map,
# the map lists nothing the header does not declare, and the built library exports exactly
# the map's functions (nothing internal leaks out).
set -u
top=${srcdir:-.}
map=$top/lib/libshmkit.map
hdr=$top/lib/shmkit.h
lib=${SHMKIT_LIB:-lib/.libs/libshmkit.so}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0

sed 's://.*$::' "$hdr" | grep -oE '\bshmkit_[a-z0-9_]+ *\(' | tr -d ' (' | sort -u >"$tmp/hdr"
grep -oE '^[[:space:]]+shmkit_[a-z0-9_]+;' "$map" | tr -d ' \t;' | sort -u >"$tmp/map"
comm -23 "$tmp/hdr" "$tmp/map" >"$tmp/missing"
comm -13 "$tmp/hdr" "$tmp/map" >"$tmp/extra"
if [ -s "$tmp/missing" ]; then
	echo "FAIL: declared in lib/shmkit.h but not in lib/libshmkit.map (add them to a new node):"
	sed 's/^/  /' "$tmp/missing"
	fail=1
fi
if [ -s "$tmp/extra" ]; then
	echo "FAIL: in lib/libshmkit.map but not declared in lib/shmkit.h:"
	sed 's/^/  /' "$tmp/extra"
	fail=1
fi
if [ -f "$lib" ] && command -v nm >/dev/null 2>&1; then
	nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' |
		sort -u >"$tmp/exported"
	if ! cmp -s "$tmp/exported" "$tmp/map"; then
		echo "FAIL: the library's exported functions differ from the map:"
		diff "$tmp/map" "$tmp/exported" | sed 's/^/  /'
		fail=1
	fi
else
	echo "note: $lib or nm missing: exported symbols not compared"
fi
[ $fail = 0 ] && echo "ok: $(wc -l <"$tmp/map") functions, header = map = exports"
exit $fail
