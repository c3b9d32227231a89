# bash completion for vdb and the vdb-* commands: options, metric, index, format and order
# names, collection names read from the database directory named on the command line, and
# files or directories for the operands. Installed once per command name, as
# bash-completion loads completions by the name of the command being completed.

# Options per command; those taking a value, separately, to know which words are values.
_vdb_opts_create='-c --collection -d --dim -m --metric --index --m --ef-construction --seal-size --index-field --quantize -q --quiet -h --help -V --version'
_vdb_vals_create='-c --collection -d --dim -m --metric --index --m --ef-construction --seal-size --index-field --quantize'
_vdb_opts_ingest='-c --collection -f --format --ids --id-offset --payloads --id-column --vector-column --vector-columns --payload-column -b --batch --delete-where --commit-delay --skip-invalid --rejects --max-line-bytes --wait --no-wait --dry-run --no-settle -j --threads --json -v --verbose -q --quiet -h --help -V --version'
_vdb_vals_ingest='-c --collection -f --format --ids --id-offset --payloads --id-column --vector-column --vector-columns --payload-column -b --batch --delete-where --commit-delay --rejects --max-line-bytes --wait -j --threads'
_vdb_opts_query='-c --collection -k --top-k --ef --exact --oversample --filter --count --payload --vector --with-payloads --with-vectors --query-vector --id --ids-from --max-line-bytes --skip-invalid -j --threads -q --quiet -h --help -V --version'
_vdb_vals_query='-c --collection -k --top-k --ef --oversample --filter --query-vector --id --ids-from --max-line-bytes -j --threads'
_vdb_opts_export='-c --collection -f --format --filter -o --output --zstd --no-sync --ids-out --payloads-out --order --vector-columns --payload-columns --compression --row-group-rows -q --quiet -h --help -V --version'
_vdb_vals_export='-c --collection -f --format --filter -o --output --ids-out --payloads-out --order'
_vdb_opts_compact='-c --collection --quantize --wait --no-wait -j --threads --json -q --quiet -h --help -V --version'
_vdb_vals_compact='-c --collection --quantize --wait -j --threads'
_vdb_opts_snapshot='-c --collection -o --output --since --into --keep --keep-last --keep-hourly --keep-daily --keep-weekly --keep-monthly --full-every --list --prune --dry-run --json -l --level -j -T --threads -q --quiet -h --help -V --version'
_vdb_vals_snapshot='-c --collection -o --output --since --into --keep --keep-last --keep-hourly --keep-daily --keep-weekly --keep-monthly --full-every --list --prune -l --level -j -T --threads'
_vdb_opts_restore='--force --at --chain-dir --verify --list --json -q --quiet -h --help -V --version'
_vdb_vals_restore='--at --chain-dir'
_vdb_opts_check='-c --collection --repair --json -q --quiet -h --help -V --version'
_vdb_vals_check='-c --collection'
_vdb_opts_info='-c --collection --json --list --fields --sample -q --quiet -h --help -V --version'
_vdb_vals_info='-c --collection --sample'
_vdb_opts_drop='-c --collection --wait -q --quiet -h --help -V --version'
_vdb_vals_drop='-c --collection --wait'
_vdb_opts_rename='-c --collection --wait -q --quiet -h --help -V --version'
_vdb_vals_rename='-c --collection --wait'
_vdb_commands='create ingest query export compact snapshot restore check info drop rename help'

# The collections of database directory $1, one per line.
_vdb_collections()
{
	local db=$1 f
	[[ $db == \~* ]] && db=$HOME${db#\~}
	[[ -f $db/VDB ]] || return 0
	for f in "$db"/*/CONFIG; do
		[[ -f $f ]] || continue
		f=${f%/CONFIG}
		printf '%s\n' "${f##*/}"
	done
}

# COMPREPLY = compgen "$@", one match per line (names may hold blanks).
_vdb_reply()
{
	mapfile -t COMPREPLY < <(compgen "$@")
}

# Completes command $1 (create, ingest, ...) whose arguments start at COMP_WORDS[$2].
_vdb_complete_command()
{
	local cmd=$1 first=$2 cur=${COMP_WORDS[COMP_CWORD]} prev="" i w db="" skip=0
	local opts_var=_vdb_opts_$cmd vals_var=_vdb_vals_$cmd
	local opts=${!opts_var-} vals=${!vals_var-}
	((COMP_CWORD > first)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# "--metric=co": bash splits at '=' (COMP_WORDBREAKS).
	if [[ $cur == = ]]; then
		prev=${COMP_WORDS[COMP_CWORD - 1]} cur=""
	elif [[ $prev == = ]] && ((COMP_CWORD - 2 >= first)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi
	# The database: the first operand, skipping options and their values.
	for ((i = first; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if ((skip)); then skip=0; continue; fi
		[[ $w == = ]] && { skip=1; continue; }
		if [[ $w == -* ]]; then
			[[ " $vals " == *" $w "* && ${COMP_WORDS[i + 1]-} != = ]] && skip=1
			continue
		fi
		db=$w
		break
	done
	case $prev in
	-c | --collection) _vdb_reply -W "$(_vdb_collections "$db")" -- "$cur"; return ;;
	-m | --metric) _vdb_reply -W 'cosine l2 dot' -- "$cur"; return ;;
	--index) _vdb_reply -W 'hnsw flat' -- "$cur"; return ;;
	--order) _vdb_reply -W 'storage id' -- "$cur"; return ;;
	-f | --format)
		if [[ $cmd == export ]]; then
			_vdb_reply -W 'jsonl npy fvecs csv parquet' -- "$cur"
		else
			_vdb_reply -W 'jsonl npy fvecs bvecs csv parquet' -- "$cur"
		fi
		return ;;
	--index-field) _vdb_reply -W 'NAME:keyword NAME:int NAME:float' -- "$cur"; return ;;
	--quantize) _vdb_reply -W 'none int8 binary' -- "$cur"; return ;;
	--compression) _vdb_reply -W 'zstd snappy none' -- "$cur"; return ;;
	--ids | --payloads | --rejects | -o | --output | --ids-out | --payloads-out | --since)
		_vdb_reply -f -- "$cur"; compopt -o filenames 2>/dev/null; return ;;
	--into | --chain-dir) _vdb_reply -d -- "$cur"; compopt -o filenames 2>/dev/null; return ;;
	esac
	[[ " $vals " == *" $prev "* && $prev == -* ]] && { COMPREPLY=(); return; }
	if [[ $cur == -* ]]; then
		_vdb_reply -W "$opts" -- "$cur"
		return
	fi
	# Operands: the database directory first (restore: an archive, then a target), then files.
	if [[ -z $db && $cmd != restore ]]; then
		_vdb_reply -d -- "$cur"
	else
		_vdb_reply -f -- "$cur"
	fi
	compopt -o filenames 2>/dev/null
}

_vdb_single()
{
	_vdb_complete_command "${1#vdb-}" 1
}

_vdb()
{
	local cur=${COMP_WORDS[COMP_CWORD]}
	if ((COMP_CWORD == 1)); then
		_vdb_reply -W "$_vdb_commands -h --help -V --version" -- "$cur"
	elif [[ ${COMP_WORDS[1]} == help ]]; then
		((COMP_CWORD == 2)) && _vdb_reply -W "${_vdb_commands% help}" -- "$cur"
	else
		_vdb_complete_command "${COMP_WORDS[1]}" 2
	fi
}

complete -F _vdb vdb
complete -F _vdb_single vdb-create vdb-ingest vdb-query vdb-export vdb-compact vdb-snapshot \
	vdb-restore vdb-check vdb-info vdb-drop vdb-rename
