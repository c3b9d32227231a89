#!/bin/bash
# Prints, one per line, the matches bash offers for the command line "$1" completed at its
# end: bash-completion loads the completion of the command from $BASH_COMPLETION_USER_DIR
# (as it would from where meson installs it) and the -F function it registers runs with
# COMP_WORDS split as bash splits them (COMP_WORDBREAKS: blanks, and '=' kept as a word).
set -u
line=$1
# shellcheck disable=SC1091
. /usr/share/bash-completion/bash_completion || exit 2
read -r -a words <<<"$line"
[[ $line == *' ' ]] && words+=("")
split=()
for w in "${words[@]}"; do
	if [[ $w == --*=* ]]; then
		split+=("${w%%=*}" "=" "${w#*=}")
	else
		split+=("$w")
	fi
done
COMP_WORDS=("${split[@]}")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}
__load_completion "${COMP_WORDS[0]}" || { echo "no completion for ${COMP_WORDS[0]}" >&2; exit 3; }
spec=$(complete -p "${COMP_WORDS[0]}") || exit 3
fn=${spec#*-F }
fn=${fn%% *}
COMPREPLY=()
prev=""
((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
