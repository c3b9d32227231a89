#!/bin/sh
# Lints every man page with groff's warnings enabled, typeset and at 80 columns as man(1) shows
# it on a terminal: any warning fails the test. Also
# checks that each page documents exactly the long options the command's --help lists.
set -u
srcdir=$1 bindir=$2
status=0 n=0
for page in "$srcdir"/man/*.1; do
	n=$((n + 1))
	out=$(LC_ALL=C.UTF-8 groff -t -man -ww -z "$page" 2>&1; LC_ALL=C.UTF-8 groff -t -man -Tutf8 -rLL=80n -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL $page: $out"
		status=1
		continue
	fi
	cmd=$(basename "$page" .1)
	help=$("$bindir/$cmd" --help)
	for opt in $(sed -n '/^\.SH OPTIONS/,/^\.SH EXIT/p' "$page" | grep -oE '\\-\\-[a-z]([a-z]|\\-)*' |
		sed 's/\\//g' | sort -u); do
		case "$help" in
		*"$opt"*) ;;
		*) echo "FAIL $page documents $opt, which $cmd --help does not list"; status=1 ;;
		esac
	done
	# ... and the other way round: every long option --help lists is documented.
	for opt in $(printf '%s\n' "$help" | grep -o '\-\-[a-z][a-z-]*' | sort -u); do
		grep -q -- "$(printf '%s' "$opt" | sed 's/-/\\\\-/g')" "$page" ||
			{ echo "FAIL $page does not document $opt, which $cmd --help lists"; status=1; }
	done
	# The SYNOPSIS shows the options the Usage lines of --help show, and no others.
	syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$page" | grep -oE '\\-\\-[a-z]([a-z]|\\-)*' |
		sed 's/\\//g' | sort -u)
	use=$(printf '%s\n' "$help" | sed -n '/^Usage:/,/^$/p' | grep -o '\-\-[a-z][a-z-]*' | sort -u)
	[ "$syn" = "$use" ] || {
		echo "FAIL $page SYNOPSIS options differ from $cmd --help Usage:" $syn / $use
		status=1
	}
	# One format for every --help: Usage, Options, and the shared exit-code table last.
	for part in '^Usage: '"$cmd"' ' '^Options:$' '^Exit status:$' '^  75  locked by another writer'; do
		printf '%s\n' "$help" | grep -q -- "$part" ||
			{ echo "FAIL $cmd --help lacks a line matching '$part'"; status=1; }
	done
	echo "ok $page"
done
for page in "$srcdir"/man/*.7; do
	n=$((n + 1))
	out=$(LC_ALL=C.UTF-8 groff -t -man -ww -z "$page" 2>&1; LC_ALL=C.UTF-8 groff -t -man -Tutf8 -rLL=80n -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL $page: $out"
		status=1
		continue
	fi
	echo "ok $page"
done
[ "$n" -gt 0 ] || { echo "no man pages found"; exit 1; }
exit $status
