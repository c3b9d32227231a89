#!/bin/sh
# `meson install` into a DESTDIR puts every file in its standard place, and the example in
# examples/ builds against the installed library through pkg-config and runs.
#   tests/install.sh SRCDIR BUILDDIR
set -eu
srcdir=$1 builddir=$2
dest=$(mktemp -d "${TMPDIR:-/tmp}/vdb-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$builddir" --no-rebuild --quiet --destdir "$dest" >/dev/null ||
	fail "meson install"
opts=$(meson introspect "$builddir" --buildoptions)
opt() { printf '%s' "$opts" | python3 -c "import json,sys; print([o['value'] for o in json.load(sys.stdin) if o['name']==sys.argv[1]][0])" "$1"; }
prefix=$(opt prefix) libdir=$(opt libdir) bindir=$(opt bindir) mandir=$(opt mandir)
datadir=$(opt datadir) includedir=$(opt includedir) sanitize=$(opt b_sanitize)
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
root=$dest$prefix
lib=$dest$libdir

for cmd in vdb vdb-create vdb-ingest vdb-query vdb-export vdb-compact vdb-snapshot \
	vdb-restore vdb-check vdb-info vdb-drop vdb-rename; do
	[ -x "$root/$bindir/$cmd" ] || fail "$bindir/$cmd not installed"
	case $cmd in vdb) page=man1/vdb.1 ;; *) page=man1/$cmd.1 ;; esac
	[ -f "$root/$mandir/$page" ] || fail "$mandir/$page not installed"
done
[ -f "$root/$mandir/man7/vdb.7" ] || fail "$mandir/man7/vdb.7 not installed"
[ -f "$root/$includedir/vdb.h" ] || fail "$includedir/vdb.h not installed"
for h in vdb_version.h vdb_io.h vdb_admin.h; do
	[ -f "$root/$includedir/$h" ] || fail "$includedir/$h not installed"
done
ls "$lib"/libvdb.so.* >/dev/null 2>&1 || fail "no libvdb.so.* in $libdir"
[ -e "$lib/libvdb.so" ] || fail "no libvdb.so link in $libdir"
pc=$lib/pkgconfig/vdb.pc
[ -f "$pc" ] || fail "$libdir/pkgconfig/vdb.pc not installed"
# Completions where each shell looks for them (bash and fish load them by command name).
for cmd in vdb vdb-create vdb-ingest vdb-query vdb-export vdb-compact vdb-snapshot \
	vdb-restore vdb-check vdb-info vdb-drop vdb-rename; do
	[ -f "$root/$datadir/bash-completion/completions/$cmd" ] || fail "bash completion $cmd"
	[ -f "$root/$datadir/fish/vendor_completions.d/$cmd.fish" ] || fail "fish completion $cmd"
done
[ -f "$root/$datadir/zsh/site-functions/_vdb" ] || fail "zsh completion _vdb"

# The Python module, in the site directory of the Python meson found, names the installed
# library (imported with the DESTDIR copy of it standing in, when numpy is there).
init=$(find "$dest" -path '*/vdb/__init__.py' | head -n 1)
[ -n "$init" ] || fail "the Python module (vdb/__init__.py) is not installed"
grep -q "LIBRARY = \"$libdir/libvdb.so.0\"" "$(dirname "$init")/_paths.py" ||
	fail "the installed Python module does not name $libdir/libvdb.so.0"
for py in python3 /usr/bin/python3; do
	# (a sanitized library cannot be loaded into an uninstrumented Python: tests/python
	# preloads the runtimes for that)
	if [ "$sanitize" = none ] && "$py" -c 'import numpy' 2>/dev/null; then
		VDB_LIBRARY="$lib/libvdb.so.0" PYTHONPATH="$(dirname "$(dirname "$init")")" "$py" -c \
			'import vdb, sys; sys.exit(0 if vdb.__version__ else 1)' ||
			fail "the installed Python module does not import"
		break
	fi
done

# The installed commands run from the prefix, and vdb finds the vdb-* beside it.
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PATH=/usr/bin:/bin "$root/$bindir/vdb" info --version | grep -q '^vdb-info (vdb) ' ||
	fail "installed vdb does not run the installed vdb-info"

# The example, through pkg-config, against the installed header and library. The .pc file
# names the final prefix; pointing prefix at the DESTDIR copy stands for installing there.
cflags=$(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --define-variable=prefix="$root" --cflags vdb)
libs=$(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --define-variable=prefix="$root" --libs vdb)
case $cflags in *"$root"*) ;; *) fail "pkg-config --cflags vdb does not point into the prefix: $cflags" ;; esac
extra=""
[ "$sanitize" != none ] && extra="-fsanitize=$sanitize"
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -Wall -Wextra -Werror $extra $cflags -o "$dest/nearest" \
	"$srcdir/examples/nearest.c" $libs || fail "examples/nearest.c does not build"
out=$("$dest/nearest" "$dest/db") || fail "examples/nearest failed"
expected="4 records; nearest to [0.9, 0.2]:
2 0.2236 {\"name\":\"east\"}
1 0.9220 {\"name\":\"origin\"}
3 1.2042 {\"name\":\"north\"}"
[ "$out" = "$expected" ] || fail "examples/nearest printed:
$out"
# What the library wrote, the installed commands read.
PATH=/usr/bin:/bin "$root/$bindir/vdb" query "$dest/db" -c points --vector '[0.9,0.2]' -k 1 |
	grep -q '"id":2' || fail "vdb query does not find the example's record"
# The loader and the query stream: a JSON-lines file in, query lines answered.
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -Wall -Wextra -Werror $extra $cflags -o "$dest/load_and_query" \
	"$srcdir/examples/load_and_query.c" $libs || fail "examples/load_and_query.c does not build"
printf '%s\n' '{"id": 1, "vector": [1, 0], "payload": {"name": "east"}}' \
	'{"id": "n", "vector": [0, 1], "payload": {"name": "north"}}' \
	'not a record' > "$dest/records.jsonl"
out=$(printf '[1, 0.1]\n' | "$dest/load_and_query" "$dest/db2" 2 "$dest/records.jsonl" 2>&1) &&
	fail "examples/load_and_query accepted a bad line: $out"
case $out in *"records.jsonl: line 3: "*) ;; *) fail "examples/load_and_query: $out" ;; esac
out=$(printf '[1, 0]\n{"vector": [0, 2], "k": 1}\n' |
	"$dest/load_and_query" "$dest/db2" 2 /dev/null 2>/dev/null) ||
	fail "examples/load_and_query failed"
expected='{"results":[{"id":1,"score":1,"payload":{"name":"east"}},{"id":"n","score":0,"payload":{"name":"north"}}]}
{"results":[{"id":"n","score":1,"payload":{"name":"north"}}]}'
[ "$out" = "$expected" ] || fail "examples/load_and_query printed:
$out"
echo "ok: installed into DESTDIR; examples/nearest and examples/load_and_query built through pkg-config and ran"
