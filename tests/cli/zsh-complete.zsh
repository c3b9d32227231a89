#!/bin/zsh -f
# Prints, one per line, the matches zsh's completion system offers for the command line
# "$2" (completed at its end, as after pressing TAB), with the completion functions of
# directory $1 first in fpath. An interactive zsh runs in a pseudo-terminal (zsh/zpty);
# compadd is wrapped to print each match between two NUL lines. The technique is that of
# zsh-capture-completion (Valodim).
zmodload zsh/zpty || { echo 'zsh/zpty missing' >&2; exit 2 }
dir=$1 line=$2
setup=$(mktemp) || exit 2
trap 'rm -f $setup' EXIT
cat > $setup <<SETUP
PROMPT=
fpath=(${(q)dir} \$fpath)
autoload -Uz compinit
compinit -u -D
bindkey '^M' undefined
bindkey '^J' undefined
bindkey '^I' complete-word
null-line() { echo -E - \$'\0' }
compprefuncs=( null-line )
comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
    builtin compadd "\$@"
    return \$?
  fi
  typeset -a __hits
  builtin compadd -A __hits "\$@"
  [[ -n \$__hits ]] || return
  local h
  for h in \$__hits; do echo -E - "<match>\$h"; done
}
echo ok-ready
SETUP
zpty z zsh -f -i
zpty -w z "source ${(q)setup}"
local out
repeat 50; do
  zpty -r -t z out 2>/dev/null && [[ $out == *ok-ready* ]] && break
  sleep 0.05
done
zpty -w -n z "$line"$'\t'
integer tog=0
local l
while zpty -r z l; do
  [[ $l == *$'\0'* ]] && { (( tog++ )) && break || continue }
  (( tog )) && [[ $l == *'<match>'* ]] && print -r -- "${${l#*<match>}%$'\r'}"
done
zpty -d z
