# fish completion for vdb and the vdb-* commands: options, metric, index, format and order
# names, collection names read from the database directory on the command line. Installed
# once per command name, as fish loads completions by the name of the command.

# The first argument that is a vdb database directory (holds the VDB marker).
function __vdb_db
    for t in (commandline -opc)[2..-1]
        set -l p (string replace -r '^~' -- $HOME $t)
        if test -f "$p/VDB"
            echo $p
            return 0
        end
    end
    return 1
end

function __vdb_collections
    set -l db (__vdb_db); or return 0
    for f in $db/*/CONFIG
        basename (dirname $f)
    end
end

# Adds a completion to vdb-SUB and to `vdb SUB`.
function __vdb_complete --argument-names sub
    set -e argv[1]
    complete -c vdb-$sub $argv
    complete -c vdb -n "__fish_seen_subcommand_from $sub" $argv
end

set -l __vdb_cmds create ingest query export compact snapshot restore check info drop rename
complete -c vdb -f -n "not __fish_seen_subcommand_from $__vdb_cmds help" -a "$__vdb_cmds help"
complete -c vdb -f -n "__fish_seen_subcommand_from help" -a "$__vdb_cmds"
complete -c vdb -n "not __fish_seen_subcommand_from $__vdb_cmds help" -s h -l help -d 'show the help'
complete -c vdb -n "not __fish_seen_subcommand_from $__vdb_cmds help" -s V -l version -d 'show the versions'

for sub in $__vdb_cmds
    __vdb_complete $sub -s h -l help -d 'show the help'
    __vdb_complete $sub -s V -l version -d 'show the version'
    __vdb_complete $sub -s q -l quiet -d 'print nothing but errors'
    test $sub = restore; or __vdb_complete $sub -s c -l collection -x -a '(__vdb_collections)' -d collection
end
for sub in ingest compact drop rename
    __vdb_complete $sub -l wait -x -d 'wait at most SECONDS for the writer lock'
end
for sub in ingest compact
    __vdb_complete $sub -l no-wait -d 'fail at once if another writer holds the lock'
end
for sub in ingest query
    __vdb_complete $sub -l max-line-bytes -x -d 'longest accepted line'
end
for sub in query export
    __vdb_complete $sub -l filter -x -d 'payload filter (JSON)'
end

__vdb_complete ingest -l dry-run -d 'check everything, commit nothing'
__vdb_complete ingest -l no-settle -d 'leave the loaded records in the log and flat segments'
__vdb_complete create -s d -l dim -x -d 'vector dimension'
__vdb_complete create -s m -l metric -x -a 'cosine l2 dot' -d metric
__vdb_complete create -l index -x -a 'hnsw flat' -d 'index type'
__vdb_complete create -l m -x -d 'HNSW links per node and level'
__vdb_complete create -l ef-construction -x -d 'HNSW build beam width'
__vdb_complete create -l seal-size -x -d 'log size that triggers a seal'
__vdb_complete create -l index-field -x -a 'NAME:keyword NAME:int NAME:float' -d 'payload index'
__vdb_complete create -l quantize -x -a 'none int8 binary' -d 'codes graph searches walk'
__vdb_complete compact -l quantize -x -a 'none int8 binary' -d 'codes for every segment'

__vdb_complete ingest -s f -l format -x -a 'jsonl npy fvecs bvecs csv parquet' -d 'input format'
__vdb_complete ingest -l ids -r -F -d 'ids file, one per row'
__vdb_complete ingest -l id-offset -x -d 'id = row number + N'
__vdb_complete ingest -l payloads -r -F -d 'payloads file, one per row'
__vdb_complete ingest -l id-column -x -d 'csv, parquet: id column'
__vdb_complete ingest -l vector-column -x -d 'csv, parquet: vector column'
__vdb_complete ingest -l vector-columns -x -d 'csv: vector columns'
__vdb_complete ingest -l payload-column -x -d 'csv, parquet: the JSON payload column'
__vdb_complete ingest -s b -l batch -x -d 'records per batch'
__vdb_complete ingest -l delete-where -x -d 'delete matching records first'
__vdb_complete ingest -l commit-delay -x -d 'wait up to MS for more input before committing'
__vdb_complete ingest -l skip-invalid -d 'report bad lines and go on'
__vdb_complete ingest -l rejects -r -F -d 'copy bad lines to FILE'
__vdb_complete ingest -s v -l verbose -d 'report each batch'
__vdb_complete ingest -s j -l threads -x -d 'threads'
__vdb_complete compact -s j -l threads -x -d 'threads'

__vdb_complete query -s k -l top-k -x -d 'results per query'
__vdb_complete query -l ef -x -d 'graph search beam width'
__vdb_complete query -l exact -d 'scan every vector'
__vdb_complete query -l oversample -x -d 'rescore the best k * F candidates'
__vdb_complete query -l count -d 'count live records'
__vdb_complete query -l payload -d 'include payloads'
__vdb_complete query -l vector -d 'include vectors, or --vector=JSON: one query'
__vdb_complete query -l with-vectors -d 'include vectors'
__vdb_complete query -l with-payloads -d 'include payloads'
__vdb_complete query -l query-vector -x -d 'answer this one query'
__vdb_complete query -l id -x -d 'print the record with this id'
__vdb_complete query -l ids-from -r -F -d 'print the record of each id in FILE'
__vdb_complete query -l skip-invalid -d 'answer bad lines with error lines and go on'
__vdb_complete query -s j -l threads -x -d 'threads'

__vdb_complete export -s f -l format -x -a 'jsonl npy fvecs csv parquet' -d 'output format'
__vdb_complete export -s o -l output -r -F -d 'output file'
__vdb_complete export -l zstd -d 'compress with zstd'
__vdb_complete export -l no-sync -d 'do not fsync the files written'
__vdb_complete export -l ids-out -r -F -d 'write the ids to FILE'
__vdb_complete export -l payloads-out -r -F -d 'write the payloads to FILE'
__vdb_complete export -l order -x -a 'storage id' -d 'record order'
__vdb_complete export -l vector-columns -d 'csv: vector as numeric columns'
__vdb_complete export -l payload-columns -d 'csv: a column per payload key (lossy); parquet: typed columns too'
__vdb_complete export -l compression -x -a 'zstd snappy none' -d 'parquet: page compression'
__vdb_complete export -l row-group-rows -x -d 'parquet: rows per row group'

__vdb_complete snapshot -s o -l output -r -F -d 'archive file'
__vdb_complete snapshot -l since -r -F -d 'incremental on this snapshot'
__vdb_complete snapshot -l into -x -a '(__fish_complete_directories)' -d 'cron mode: snapshot directory'
__vdb_complete snapshot -l keep -x -d 'keep the newest N snapshots'
__vdb_complete snapshot -l keep-last -x -d 'keep the newest N snapshots'
__vdb_complete snapshot -l keep-hourly -x -d 'keep the newest of N hours'
__vdb_complete snapshot -l keep-daily -x -d 'keep the newest of N days'
__vdb_complete snapshot -l keep-weekly -x -d 'keep the newest of N weeks'
__vdb_complete snapshot -l keep-monthly -x -d 'keep the newest of N months'
__vdb_complete snapshot -l list -x -a '(__fish_complete_directories)' -d 'list the snapshots of a directory'
__vdb_complete snapshot -l prune -x -a '(__fish_complete_directories)' -d 'apply the retention options'
__vdb_complete snapshot -l dry-run -d 'with --prune: remove nothing'
__vdb_complete snapshot -l json -d 'with --list or --prune: JSON lines'
__vdb_complete snapshot -l full-every -x -d 'cron mode: every Nth is full'
__vdb_complete snapshot -s l -l level -x -d 'zstd level'
__vdb_complete snapshot -s j -l threads -x -d 'zstd threads'
__vdb_complete snapshot -s T -x -d 'zstd threads (as -j)'

__vdb_complete restore -l force -d 'replace TARGET'
__vdb_complete restore -l at -x -d 'newest snapshot at or before TIME'
__vdb_complete restore -l chain-dir -x -a '(__fish_complete_directories)' -d 'where earlier snapshots are'
__vdb_complete restore -l verify -d 'check the archive, write nothing'
__vdb_complete restore -l list -d 'print the archive manifest'
__vdb_complete restore -l json -d 'with --list: as JSON'

__vdb_complete check -l repair -d 'rebuild damaged graphs and indexes'
__vdb_complete check -l json -d 'JSON lines output'
__vdb_complete ingest -l json -d 'the summary as JSON'
__vdb_complete compact -l json -d 'the summary as JSON'

__vdb_complete info -l json -d 'JSON lines output'
__vdb_complete info -l list -d 'only the collection names'
__vdb_complete info -l fields -d 'the payload fields'
__vdb_complete info -l sample -x -d 'records --fields reads'
