#!/bin/bash
# man_check: the manual pages stay complete and clean. Fails, listing every problem, when
#  - a page does not render without warnings (groff -man -ww -z, or mandoc -Tlint),
#  - an alias page (.so man3/PAGE.3) points at a page that does not exist or does not show the
#    function in its SYNOPSIS,
#  - a public function declared in lib/shmkit.h has no page,
#  - a command listed by `shmkit --help`, or an option listed by `shmkit COMMAND --help`,
#    is missing from shmkit(1).
set -u

: "${SHMKIT:?SHMKIT must name the built shmkit tool}"
top=${srcdir:-$(dirname "$0")/..}
man=$top/man
header=$top/lib/shmkit.h
[ -d "$man" ] && [ -f "$header" ] || { echo "ERROR: no $man or $header"; exit 99; }

problems=0
problem() { echo "MISSING/BAD: $*"; problems=$((problems + 1)); }

# --- every page renders cleanly ---------------------------------------------------------------
if command -v groff >/dev/null 2>&1; then
	render() { groff -man -ww -z -t "$1" 2>&1; }
	renderer="groff -man -ww -z"
elif command -v mandoc >/dev/null 2>&1; then
	render() { mandoc -Tlint -W warning "$1" 2>&1; }
	renderer="mandoc -Tlint"
else
	render=
	echo "note: neither groff nor mandoc is installed: pages not rendered (the other checks run)"
fi
pages=0
for page in "$man"/*.[1-8]; do
	[ -e "$page" ] || continue
	pages=$((pages + 1))
	first=$(head -1 "$page")
	case $first in
	.so\ *)
		target=$man/$(basename "${first#.so }")
		fn=$(basename "$page" | sed 's/\.[0-9]$//')
		if [ ! -f "$target" ]; then
			problem "$(basename "$page"): alias of missing page ${first#.so }"
		elif ! sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$target" | grep -qw -- "$fn"; then
			problem "$(basename "$page"): $(basename "$target") does not show $fn in its SYNOPSIS"
		fi
		continue
		;;
	esac
	if [ -n "${renderer:-}" ]; then
		out=$(render "$page")
		[ -z "$out" ] || problem "$(basename "$page") does not render cleanly ($renderer):
$out"
	fi
	grep -q '^\.TH ' "$page" || problem "$(basename "$page") has no .TH line"
done
[ $pages -gt 0 ] || problem "no pages in $man"

# --- every public function has a page --------------------------------------------------------
# Comments removed first: prose may mention names with parentheses.
funcs=$(sed -e ':a' -e '/\/\*/{ /\*\//!{ N; ba; }; s:/\*.*\*/::; ba; }' "$header" |
	grep -o 'shmkit_[a-z0-9_]*[[:space:]]*(' | sed 's/[[:space:]]*($//' | sort -u)
nfuncs=$(printf '%s\n' "$funcs" | grep -c .)
[ "$nfuncs" -gt 0 ] || problem "found no functions in $header"
for fn in $funcs; do
	[ -f "$man/$fn.3" ] || problem "$fn (lib/shmkit.h) has no page: add man/$fn.3 (a '.so man3/FAMILY.3' alias) and list it in dist_man_MANS"
done

# --- every command and option of the tool is in shmkit(1) -------------------------------------
page1=$man/shmkit.1
if [ ! -f "$page1" ]; then
	problem "no shmkit.1"
else
	# The page's text with troff's \- turned back into -.
	text=$(sed 's/\\-/-/g' "$page1")
	cmds=$("$SHMKIT" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p')
	[ -n "$cmds" ] || problem "shmkit --help lists no commands"
	for c in $cmds; do
		if ! printf '%s\n' "$text" | grep -q "^\.SS \"\{0,1\}$c\b"; then
			problem "command '$c' (shmkit --help) has no '.SS $c' section in shmkit.1"
			continue
		fi
		# A command that runs a program of its own (shmkit bridge: shmkit-bridge) has its
		# options in that program's page.
		page=$page1 ctext=$text
		if [ -f "$man/shmkit-$c.1" ]; then
			page=$man/shmkit-$c.1
			ctext=$(sed 's/\\-/-/g' "$page")
		fi
		for o in $("$SHMKIT" "$c" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
			printf '%s\n' "$ctext" | grep -qE -- "$o([^a-z0-9-]|$)" ||
				problem "option '$o' of 'shmkit $c' is missing from ${page##*/}"
		done
	done
fi

echo "checked $pages pages, $nfuncs functions, $(printf '%s\n' "${cmds:-}" | grep -c .) commands"
[ $problems -eq 0 ] || { echo "$problems problem(s)"; exit 1; }
