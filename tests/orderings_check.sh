#!/bin/bash
# orderings_check: the library's memory-ordering comments stay true. Fails, listing every
# problem, when
#  - an acquire or release site (memory_order_acquire, _release, _acq_rel) in lib/ carries no
#    label like "R1:" (DPDK's style: "A1: establishes a synchronizing edge with R1") on its
#    line or in the three lines above it; files not yet labelled are listed below with the
#    number of unlabelled sites they had, which may only go down;
#  - a label used in ring.c, ec.c or ec.h is not one that ring.c's or ec.h's ordering table
#    defines, or a labelled edge names no partner ("with X") that exists;
#  - a claim of uniqueness ("the one place", "the only place", "in one place") appears in lib/
#    that this script does not verify, or one it verifies is no longer true.
set -u
top=${srcdir:-$(dirname "$0")/..}
lib=$top/lib
problems=0
problem() { echo "BAD: $*"; problems=$((problems + 1)); }

# Files whose sites are not labelled yet, with how many unlabelled sites they may keep.
declare -A pending=([deadlock.c]=8 [event.c]=3 [lease.c]=5 [mutex.c]=5 [proc.c]=2)

label_re='\b[A-Z][0-9]+[a-z]?:'
awk_label_re='(^|[^A-Za-z0-9_])[A-Z][0-9]+[a-z]?:'
site_re='memory_order_(acquire|release|acq_rel)'

# --- every acquire/release site is labelled ---------------------------------------------------
for f in "$lib"/*.c "$lib"/*.h; do
	b=$(basename "$f")
	unlabelled=$(awk -v site="$site_re" -v label="$awk_label_re" '
		{ line[NR] = $0 }
		$0 ~ site {
			ok = 0
			for (i = NR; i >= NR - 3 && i > 0; i--)
				if (line[i] ~ label) { ok = 1; break }
			if (!ok) printf "%d ", NR
		}' "$f")
	n=$(wc -w <<<"$unlabelled")
	if [ -n "${pending[$b]:-}" ]; then
		[ "$n" -le "${pending[$b]}" ] ||
			problem "$b: $n unlabelled acquire/release sites (at most ${pending[$b]} allowed" \
				"until it is labelled): lines $unlabelled"
	elif [ "$n" -gt 0 ]; then
		problem "$b: acquire/release sites without an ordering label: lines $unlabelled"
	fi
done

# --- the ring's labels are the ones its tables define, and partners exist ---------------------
defined=$(sed -n '1,/^#include/p' "$lib/ring.c" | grep -oE '^ \*  [A-Z][0-9]+( / [A-Z][0-9]+)?' |
	grep -oE '[A-Z][0-9]+'; sed -n '1,/^#ifndef/p' "$lib/ec.h" | grep -oE '\((E[0-9]+)\)' | tr -d '()')
for f in ring.c ec.c ec.h queue.c pipe.c; do
	for l in $(grep -oE "$label_re" "$lib/$f" | tr -d ':' | grep -v '^[MYJ]' | sort -u); do
		grep -qx "$l" <<<"$defined" || problem "$f: label $l is not in ring.c's or ec.h's ordering table"
	done
	# "with X": X must be a defined label too.
	for l in $(grep -oE 'edge with [A-Z][0-9]+' "$lib/$f" | awk '{print $3}' | grep -v '^[MYJ]' | sort -u); do
		grep -qx "$l" <<<"$defined" || problem "$f: an edge with $l, which no table defines"
	done
done
# Labels outside the ring (region.c: M1/M2, Y1/Y2; queue.c: J1/J2) come in pairs.
for f in region.c queue.c; do
	for l in $(grep -oE '\b[MYJ][0-9]:' "$lib/$f" | tr -d ':' | sort -u); do
		partner=$(grep -oE "\b$l: establishes a synchronizing edge with [A-Z][0-9]|\b$l:.* with [A-Z][0-9]" "$lib/$f" | grep -oE '[A-Z][0-9]$' | head -1)
		[ -n "$partner" ] && grep -qE "\b$partner:" "$lib/$f" ||
			problem "$f: $l has no labelled partner"
	done
done

# --- claims of uniqueness ---------------------------------------------------------------------
while IFS=: read -r file _; do
	case $(basename "$file") in
	wait.c) ;; # verified below
	*) problem "$(basename "$file"): a claim of uniqueness this script does not verify:" \
		"$(grep -nE 'the one place|the only place|in one place' "$file" | head -1)" ;;
	esac
done < <(grep -lE 'the one place|the only place|in one place' "$lib"/*.c "$lib"/*.h)
# wait.c: "The one place shmkit makes futex system calls".
futex_files=$(grep -lE 'SYS_futex|__NR_futex' "$lib"/*.c | xargs -n1 basename | sort -u | tr '\n' ' ')
[ "$futex_files" = "wait.c " ] || problem "wait.c says it is the one place of futex calls; also: $futex_files"
# ... and names every other wait (sched_yield, nanosleep) by file.
named=$(sed -n 's/.*Other waits (checked by tests\/orderings_check.sh): //p' "$lib/wait.c" | tr ' ' '\n' |
	grep . | sort -u | tr '\n' ' ')
actual=$(grep -lE '\b(sched_yield|nanosleep|usleep|clock_nanosleep)\(' "$lib"/*.c | xargs -n1 basename |
	grep -vx wait.c | sort -u | tr '\n' ' ')
[ "$named" = "$actual" ] || problem "wait.c names the other waits as '$named'; they are in '$actual'"

[ $problems -eq 0 ] && echo "ok: ordering labels and claims checked"
[ $problems -eq 0 ]
