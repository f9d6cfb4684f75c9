#!/bin/sh
# The house style of .editorconfig, checked: every source file ends lines with LF, ends with a
# newline and has no trailing white space; C indents with tabs (a line may start with spaces
# only to continue a comment, " * ..."). Formatting beyond that is the author's.
set -u
top=${srcdir:-.}
fail=0
files=$(cd "$top" && find lib tools tests examples python/src python/shmkit python/tests \
	\( -name build -o -name fuzz -o -name .libs -o -name .deps \) -prune -o \
	-type f \( -name '*.[ch]' -o -name '*.py' -o -name '*.sh' \) -print 2>/dev/null | sort)
[ -n "$files" ] || { echo "style_check: no sources under $top"; exit 99; }
for f in $files; do
	p=$top/$f
	case $f in lib/shmkit_version.h) continue ;; esac
	if grep -nE '[[:space:]]+$' "$p" >/dev/null; then
		grep -nE '[[:space:]]+$' "$p" | head -3 | sed "s|^|$f:|;s|\$| <- trailing white space|"
		fail=1
	fi
	if [ -s "$p" ] && [ "$(tail -c 1 "$p" | od -An -c | tr -d ' ')" != '\n' ]; then
		echo "$f: no newline at the end of the file"
		fail=1
	fi
	case $f in
	*.[ch])
		if grep -nE '^ +[^ *]' "$p" >/dev/null; then
			grep -nE '^ +[^ *]' "$p" | head -3 | sed "s|^|$f:|;s|\$| <- indented with spaces (tabs here)|"
			fail=1
		fi ;;
	esac
done
[ $fail = 0 ] && echo "style_check: $(echo "$files" | wc -l) files follow .editorconfig"
exit $fail
