"""vdb for Python: the embedded vector database, over libvdb (ctypes), numpy in and out.

    import numpy as np, vdb
    with vdb.open("db", create=True) as db:
        col = db.create_collection("docs", dim=384, metric="cosine")
        col.upsert([1, 2], np.random.rand(2, 384).astype(np.float32),
                   payloads=[{"lang": "en"}, {"lang": "de"}])
        ids, scores = col.search(np.random.rand(384), k=10, filter={"lang": "en"})

The same library the commands use does the work, with the same files and guarantees:
`upsert` is durable when it returns (one batch per call, under the collection's writer
lock, which vdb-ingest and other writers respect: `timeout=` waits that many seconds, 0
fails at once, None waits for ever); searches read lock-free and see every commit made
before the call (the collection's version is re-checked, cheaply, before each).

Threads: the GIL is released inside the library (ctypes), so searches of different
Collection objects, and searches beside upserts, run in parallel; the searches of one
Collection object are serialized (it keeps one set of scratch memory), so give each thread
its own `db[name]` to overlap them.

Errors are `vdb.Error` subclasses carrying the library's message, the status name
(`status`) and the commands' exit code for it (`exit_code`, sysexits-style):
`LockedError` (75), `DataError` (65: bad input, damaged files), `NotFoundError` (66),
`IOError` (74), `ExistsError` (73), `UsageError` (64: an invalid argument).
"""
import ctypes
import json
import os
import threading

import numpy as np

from . import _paths

__all__ = ["open", "Database", "Collection", "snapshot", "restore", "verify", "check", "Error",
           "LockedError", "DataError", "NotFoundError", "IOError", "ExistsError", "UsageError",
           "__version__"]

# ---- the library ------------------------------------------------------------------------

_STATUS = ["OK", "EINVAL", "EDATA", "ECORRUPT", "ENOENT", "EEXIST", "EIO", "ELOCKED",
           "ENOMEM", "EINTR", "EINTERNAL"]
_EXIT = {"EINVAL": 64, "EDATA": 65, "ECORRUPT": 65, "ENOENT": 66, "EEXIST": 73, "EIO": 74,
         "ELOCKED": 75, "ENOMEM": 70, "EINTR": 130, "EINTERNAL": 70}


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 512)]


class _Id(ctypes.Structure):
    # str is not NUL-terminated: a c_char_p field would be read with strlen.
    _fields_ = [("is_string", ctypes.c_int), ("num", ctypes.c_uint64),
                ("str", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Record(ctypes.Structure):
    _fields_ = [("id", _Id), ("vector", ctypes.POINTER(ctypes.c_float)),
                ("payload", ctypes.c_void_p), ("payload_len", ctypes.c_size_t)]


class _Hit(ctypes.Structure):
    _fields_ = [("score", ctypes.c_float), ("source", ctypes.c_uint32),
                ("row", ctypes.c_uint64)]


class _IndexField(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char * 128), ("type", ctypes.c_int)]


class _Config(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("dim", ctypes.c_uint32), ("metric", ctypes.c_int),
                ("seal_bytes", ctypes.c_uint64), ("index", ctypes.c_int),
                ("m", ctypes.c_uint32), ("ef_construction", ctypes.c_uint32),
                ("n_index_fields", ctypes.c_uint32), ("index_fields", _IndexField * 4),
                ("quantize", ctypes.c_int)]


class _SearchOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("ef", ctypes.c_size_t), ("exact", ctypes.c_int),
                ("filter", ctypes.c_void_p), ("threads", ctypes.c_uint),
                ("oversample", ctypes.c_double)]


class _Cancel(ctypes.Structure):
    _fields_ = [("cancelled", ctypes.c_void_p), ("ctx", ctypes.c_void_p)]


class _WriterOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("wait_seconds", ctypes.c_double),
                ("cancel", _Cancel), ("on_wait", ctypes.c_void_p),
                ("on_wait_ctx", ctypes.c_void_p), ("dry_run", ctypes.c_int),
                ("threads", ctypes.c_uint)]


class _SnapshotOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("collections", ctypes.POINTER(ctypes.c_char_p)),
                ("ncollections", ctypes.c_size_t), ("level", ctypes.c_int),
                ("threads", ctypes.c_int), ("since", ctypes.c_char_p), ("cancel", _Cancel),
                ("progress", ctypes.c_void_p), ("progress_ctx", ctypes.c_void_p)]


class _SnapshotStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("collections", "records", "files", "referenced",
                                                "bytes_in", "bytes_out")]


class _RestoreOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("verify_only", ctypes.c_int),
                ("scratch_dir", ctypes.c_char_p), ("force", ctypes.c_int),
                ("chain_dir", ctypes.c_char_p), ("cancel", _Cancel),
                ("progress", ctypes.c_void_p), ("progress_ctx", ctypes.c_void_p)]


class _RestoreStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("collections", "records", "files", "bytes",
                                                "archives")]


_CHECK_REPORT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


class _LoaderOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("batch", ctypes.c_uint64),
                ("max_line_bytes", ctypes.c_size_t), ("skip_invalid", ctypes.c_int),
                ("ids_path", ctypes.c_char_p), ("id_offset", ctypes.c_uint64),
                ("payloads_path", ctypes.c_char_p), ("csv", ctypes.c_void_p),
                ("delete_where", ctypes.c_void_p), ("threads", ctypes.c_uint),
                ("cancel", _Cancel), ("ctx", ctypes.c_void_p),
                ("on_progress", ctypes.c_void_p), ("on_commit", ctypes.c_void_p),
                ("on_reject", ctypes.c_void_p), ("write_rejected", ctypes.c_void_p),
                ("rejects_name", ctypes.c_char_p), ("no_settle", ctypes.c_int),
                ("commit_delay_ms", ctypes.c_uint)]


class _ExportOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("format", ctypes.c_int),
                ("output", ctypes.c_char_p), ("zstd", ctypes.c_int), ("durable", ctypes.c_int),
                ("ids_path", ctypes.c_char_p), ("payloads_path", ctypes.c_char_p),
                ("order", ctypes.c_int), ("filter", ctypes.c_void_p),
                ("vector_columns", ctypes.c_int), ("payload_columns", ctypes.c_int),
                ("cancel", _Cancel), ("ctx", ctypes.c_void_p), ("on_progress", ctypes.c_void_p),
                ("on_note", ctypes.c_void_p), ("parquet_codec", ctypes.c_int),
                ("row_group_rows", ctypes.c_uint64)]


class _LoadCounts(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("committed", "upserted", "deleted", "not_found",
                                                "rejected", "batches", "seen", "bytes",
                                                "read_bytes")]


# numpy views of the library's arrays (the layouts of vdb_hit and vdb_id on this ABI).
_HIT_DTYPE = np.dtype({"names": ["score", "source", "row"], "formats": [np.float32, np.uint32,
                                                                       np.uint64],
                       "offsets": [_Hit.score.offset, _Hit.source.offset, _Hit.row.offset],
                       "itemsize": ctypes.sizeof(_Hit)})
_ID_DTYPE = np.dtype({"names": ["is_string", "num"], "formats": [np.int32, np.uint64],
                      "offsets": [_Id.is_string.offset, _Id.num.offset],
                      "itemsize": ctypes.sizeof(_Id)})


_FP = ctypes.POINTER(ctypes.c_float)
_HIT_SIZE, _ID_SIZE = ctypes.sizeof(_Hit), ctypes.sizeof(_Id)


def _records(arr, dtype):
    """A ctypes array of structures as a numpy structured array over the same memory."""
    return np.frombuffer((ctypes.c_uint8 * ctypes.sizeof(arr)).from_buffer(arr), dtype=dtype)


def _load():
    path = os.environ.get("VDB_LIBRARY") or _paths.LIBRARY
    lib = ctypes.CDLL(path)
    P, S, E = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(_Error)
    sigs = {
        "vdb_version": (ctypes.c_char_p, []),
        "vdb_db_create": (ctypes.c_int, [ctypes.c_char_p, E]),
        "vdb_collection_config_init": (None, [ctypes.POINTER(_Config)]),
        "vdb_collection_create": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p,
                                                 ctypes.POINTER(_Config), E]),
        "vdb_collection_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p,
                                               ctypes.POINTER(P), E]),
        "vdb_collection_close": (None, [P]),
        "vdb_collection_stale": (ctypes.c_int, [P]),
        "vdb_collection_refresh": (ctypes.c_int, [P, ctypes.POINTER(ctypes.c_int), E]),
        "vdb_collection_get_config": (None, [P, ctypes.POINTER(_Config)]),
        "vdb_collection_count": (ctypes.c_uint64, [P]),
        "vdb_collection_count_where": (ctypes.c_int, [P, P, ctypes.POINTER(ctypes.c_uint64),
                                                      E]),
        "vdb_collection_drop": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p,
                                               ctypes.POINTER(_WriterOptions), E]),
        "vdb_list_collections": (ctypes.c_int, [ctypes.c_char_p,
                                                ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p)),
                                                ctypes.POINTER(S), E]),
        "vdb_names_free": (None, [ctypes.POINTER(ctypes.c_char_p)]),
        "vdb_filter_parse": (ctypes.c_int, [ctypes.c_char_p, S, ctypes.POINTER(P), E]),
        "vdb_filter_free": (None, [P]),
        "vdb_search_options_init": (None, [ctypes.POINTER(_SearchOptions)]),
        "vdb_searcher_new": (ctypes.c_int, [P, ctypes.POINTER(P), E]),
        "vdb_searcher_free": (None, [P]),
        "vdb_searcher_search": (ctypes.c_int, [P, ctypes.POINTER(ctypes.c_float), S,
                                               ctypes.POINTER(_SearchOptions),
                                               ctypes.POINTER(_Hit), ctypes.POINTER(S), E]),
        "vdb_searcher_search_batch": (ctypes.c_int, [
            P, S, ctypes.POINTER(ctypes.POINTER(ctypes.c_float)), ctypes.POINTER(S),
            ctypes.POINTER(_SearchOptions), ctypes.POINTER(ctypes.POINTER(_Hit)),
            ctypes.POINTER(S), ctypes.POINTER(S), E]),
        "vdb_hit_record": (ctypes.c_int, [P, ctypes.POINTER(_Hit), ctypes.POINTER(_Record), E]),
        "vdb_get": (ctypes.c_int, [P, ctypes.POINTER(_Id), ctypes.POINTER(_Record), E]),
        "vdb_hit_ids": (ctypes.c_int, [P, ctypes.POINTER(_Hit), S, ctypes.POINTER(_Id), E]),
        "vdb_writer_options_init": (None, [ctypes.POINTER(_WriterOptions)]),
        "vdb_writer_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.POINTER(_WriterOptions), ctypes.POINTER(P), E]),
        "vdb_writer_upsert": (ctypes.c_int, [P, ctypes.POINTER(_Id),
                                             ctypes.POINTER(ctypes.c_float), ctypes.c_char_p,
                                             S, E]),
        "vdb_writer_upsert_rows": (ctypes.c_int, [P, ctypes.c_uint64,
                                                  ctypes.POINTER(ctypes.c_float), S, S,
                                                  ctypes.c_uint, ctypes.POINTER(S), E]),
        "vdb_writer_delete": (ctypes.c_int, [P, ctypes.POINTER(_Id), E]),
        "vdb_writer_delete_where": (ctypes.c_int, [P, P, ctypes.POINTER(ctypes.c_uint64), E]),
        "vdb_writer_commit": (ctypes.c_int, [P, E]),
        "vdb_writer_settle": (ctypes.c_int, [P, E]),
        "vdb_writer_close": (None, [P]),
        "vdb_snapshot_options_init": (None, [ctypes.POINTER(_SnapshotOptions)]),
        "vdb_snapshot_write_file": (ctypes.c_int, [ctypes.c_char_p,
                                                   ctypes.POINTER(_SnapshotOptions),
                                                   ctypes.c_char_p,
                                                   ctypes.POINTER(_SnapshotStats), E]),
        "vdb_restore_options_init": (None, [ctypes.POINTER(_RestoreOptions)]),
        "vdb_restore": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.POINTER(_RestoreOptions),
                                       ctypes.POINTER(_RestoreStats), E]),
        "vdb_check": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, _CHECK_REPORT, P,
                                     ctypes.POINTER(ctypes.c_uint64), E]),
        "vdb_loader_options_init": (None, [ctypes.POINTER(_LoaderOptions)]),
        "vdb_loader_new": (ctypes.c_int, [ctypes.POINTER(_LoaderOptions), ctypes.POINTER(P), E]),
        "vdb_loader_add_input": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_int, E]),
        "vdb_loader_run": (ctypes.c_int, [P, P, E]),
        "vdb_loader_counts": (None, [P, ctypes.POINTER(_LoadCounts)]),
        "vdb_loader_free": (None, [P]),
        "vdb_file_format_parse": (ctypes.c_int, [ctypes.c_char_p]),
        "vdb_file_format_of": (ctypes.c_int, [ctypes.c_char_p]),
        "vdb_export_options_init": (None, [ctypes.POINTER(_ExportOptions)]),
        "vdb_export": (ctypes.c_int, [P, ctypes.POINTER(_ExportOptions),
                                      ctypes.POINTER(ctypes.c_uint64), E]),
        "vdb_metric_name": (ctypes.c_char_p, [ctypes.c_int]),
        "vdb_metric_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), E]),
        "vdb_index_name": (ctypes.c_char_p, [ctypes.c_int]),
        "vdb_index_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), E]),
        "vdb_quantize_name": (ctypes.c_char_p, [ctypes.c_int]),
        "vdb_quantize_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                              E]),
        "vdb_field_type_name": (ctypes.c_char_p, [ctypes.c_int]),
        "vdb_field_type_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                                E]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


_lib = _load()
__version__ = _lib.vdb_version().decode()

# ---- errors -----------------------------------------------------------------------------


class Error(Exception):
    """A failure of the library: str() is its message; `status` the status name
    ("ELOCKED"), `exit_code` what the commands exit with for it."""

    def __init__(self, message, status="EINTERNAL"):
        super().__init__(message)
        self.status = status
        self.exit_code = _EXIT.get(status, 70)


class UsageError(Error, ValueError):
    """An invalid argument (exit code 64)."""


class DataError(Error, ValueError):
    """Invalid input data, or a damaged file of the database (65)."""


class NotFoundError(Error, LookupError):
    """No such database, collection or record (66)."""


class ExistsError(Error):
    """It already exists, or cannot be created (73)."""


class IOError(Error, OSError):  # noqa: A001 (vdb.IOError, as the commands' exit code 74)
    """An I/O call failed (74)."""


class LockedError(Error):
    """Another process holds the collection's writer lock (75)."""


_CLASSES = {"EINVAL": UsageError, "EDATA": DataError, "ECORRUPT": DataError,
            "ENOENT": NotFoundError, "EEXIST": ExistsError, "EIO": IOError,
            "ELOCKED": LockedError}


def _check(status, err):
    if status:
        name = _STATUS[status] if 0 <= status < len(_STATUS) else "EINTERNAL"
        msg = err.message.decode("utf-8", "replace")
        if name == "ENOMEM":
            raise MemoryError(msg)
        raise _CLASSES.get(name, Error)(msg, name)


def _call(fn, *args):
    err = _Error()
    _check(fn(*args, ctypes.byref(err)), err)


def _parse_enum(fn, word, what):
    out = ctypes.c_int()
    if not isinstance(word, str):
        raise UsageError("%s must be a string, not %r" % (what, word), "EINVAL")
    _call(fn, word.encode(), ctypes.byref(out))
    return out.value

# ---- values between Python and the library ---------------------------------------------


def _make_id(value, keep):
    """A _Id for an int or str id (keep: a list that keeps the bytes alive)."""
    if isinstance(value, (bool, np.bool_)):
        raise UsageError("an id is an integer or a string, not %r" % (value,), "EINVAL")
    if isinstance(value, (int, np.integer)):
        if not 0 <= int(value) < 2 ** 64:
            raise UsageError("integer ids are 0 to 2^64 - 1, not %d" % value, "EINVAL")
        return _Id(0, int(value), None, 0)
    if isinstance(value, str):
        b = value.encode("utf-8")
        buf = ctypes.create_string_buffer(b, len(b) or 1)
        keep.append(buf)
        return _Id(1, 0, ctypes.addressof(buf), len(b))
    raise UsageError("an id is an integer or a string, not %s" % type(value).__name__,
                     "EINVAL")


def _id_value(i):
    if i.is_string:
        return ctypes.string_at(i.str, i.len).decode("utf-8")
    return i.num


def _filter(f):
    """A parsed filter handle for a dict or JSON text (None: no filter); free with
    vdb_filter_free."""
    if f is None:
        return None
    text = f if isinstance(f, str) else json.dumps(f)
    b = text.encode("utf-8")
    out = ctypes.c_void_p()
    _call(_lib.vdb_filter_parse, b, len(b), ctypes.byref(out))
    return out


def _vectors(v, dim, what):
    """v as a C-ordered float32 (n, dim) array: a copy only when it is not one already;
    float64 and integer arrays are converted (rounded to float32 as .npy input is), other
    dtypes refused."""
    a = np.asarray(v)
    if a.dtype.kind not in "fiu":
        raise DataError("%s must hold numbers, not %s" % (what, a.dtype), "EDATA")
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != dim:
        raise DataError("%s must have shape (n, %d) or (%d,), not %s"
                        % (what, dim, dim, tuple(np.shape(v))), "EDATA")
    return np.ascontiguousarray(a, dtype=np.float32)


_EDATA = _STATUS.index("EDATA")
_ROWS_LAST = 1  # VDB_ROWS_LAST


def _row_error(err, row):
    """err with the row of the input it is about in front."""
    err.message = ("row %d: " % row).encode() + err.message[:480]
    return err


def _writer_options(timeout):
    o = _WriterOptions()
    _lib.vdb_writer_options_init(ctypes.byref(o))
    o.wait_seconds = -1.0 if timeout is None else float(timeout)
    return o

# ---- backups and checks -------------------------------------------------------------------


def _stats(st):
    return {name: getattr(st, name) for name, _ in st._fields_}


def snapshot(db_path, out, collections=None, since=None, level=3, threads=0):
    """Writes a snapshot of the database at db_path to file `out`, atomically, while
    writers keep writing (as vdb-snapshot -o does); since: an earlier snapshot in the same
    directory to write an incremental on. Returns the counts (collections, records, files,
    referenced, bytes_in, bytes_out)."""
    o = _SnapshotOptions()
    _lib.vdb_snapshot_options_init(ctypes.byref(o))
    names = [c.encode() for c in collections or []]
    arr = (ctypes.c_char_p * (len(names) or 1))(*names)
    o.collections, o.ncollections = arr, len(names)
    o.level, o.threads = int(level), int(threads)
    o.since = os.fsencode(since) if since is not None else None
    st = _SnapshotStats()
    _call(_lib.vdb_snapshot_write_file, os.fsencode(db_path), ctypes.byref(o),
          os.fsencode(out), ctypes.byref(st))
    return _stats(st)


def _restore(archive, target, verify, force, chain_dir):
    o = _RestoreOptions()
    _lib.vdb_restore_options_init(ctypes.byref(o))
    o.verify_only, o.force = int(verify), int(force)
    o.chain_dir = os.fsencode(chain_dir) if chain_dir is not None else None
    tmp = os.environ.get("TMPDIR")
    o.scratch_dir = os.fsencode(tmp) if tmp else None
    st = _RestoreStats()
    fd = os.open(archive, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _call(_lib.vdb_restore, fd, os.fsencode(archive),
              os.fsencode(target) if target is not None else None, ctypes.byref(o),
              ctypes.byref(st))
    finally:
        os.close(fd)
    return _stats(st)


def restore(archive, target, force=False, chain_dir=None):
    """Restores snapshot file `archive` as database `target`, verified whole before it
    appears (as vdb-restore does); force replaces a database at target. Returns the counts
    (collections, records, files, bytes, archives)."""
    return _restore(archive, target, False, force, chain_dir)


def verify(archive, chain_dir=None):
    """Every check a restore of `archive` makes, writing nothing where a restore would (as
    vdb-restore --verify). Raises on any problem; returns the counts."""
    return _restore(archive, None, True, False, chain_dir)


def check(db_path, collection=None):
    """Checks every byte and structure of the database (or one collection) as vdb-check
    does; returns the list of problems found (empty when it is sound)."""
    problems = []

    def report(ctx, problem, line):
        if problem:
            problems.append(line.decode("utf-8", "replace"))
    cb = _CHECK_REPORT(report)
    n = ctypes.c_uint64()
    _call(_lib.vdb_check, os.fsencode(db_path),
          collection.encode() if collection is not None else None, cb, None, ctypes.byref(n))
    return problems

# ---- databases and collections ----------------------------------------------------------


def open(path, create=False):  # noqa: A001 (vdb.open, as the issue and sqlite3 name it)
    """The database at path (a directory); create=True makes an empty one when missing."""
    return Database(path, create)


class Database:
    """A vdb database: a directory of collections. Usable as a context manager."""

    def __init__(self, path, create=False):
        self.path = os.fspath(path)
        self._b = self.path.encode()
        if create:
            _call(_lib.vdb_db_create, self._b)
        elif not os.path.isdir(self.path):
            raise NotFoundError("%s: no such database" % self.path, "ENOENT")

    def collections(self):
        """The names of the collections, sorted."""
        names = ctypes.POINTER(ctypes.c_char_p)()
        n = ctypes.c_size_t()
        _call(_lib.vdb_list_collections, self._b, ctypes.byref(names), ctypes.byref(n))
        try:
            return [names[i].decode() for i in range(n.value)]
        finally:
            _lib.vdb_names_free(names)

    def create_collection(self, name, dim, metric="l2", index="hnsw", m=16,
                          ef_construction=200, index_fields=None, quantize="none",
                          seal_bytes=None):
        """Creates collection `name` (as vdb-create does) and returns it. index_fields: a
        dict {path: "keyword" | "int" | "float"} of payload indexes (at most 4)."""
        cfg = _Config()
        _lib.vdb_collection_config_init(ctypes.byref(cfg))
        cfg.dim = int(dim)
        cfg.metric = _parse_enum(_lib.vdb_metric_parse, metric, "metric")
        cfg.index = _parse_enum(_lib.vdb_index_parse, index, "index")
        cfg.quantize = _parse_enum(_lib.vdb_quantize_parse, quantize, "quantize")
        cfg.m, cfg.ef_construction = int(m), int(ef_construction)
        if seal_bytes is not None:
            cfg.seal_bytes = int(seal_bytes)
        fields = list((index_fields or {}).items())
        if len(fields) > 4:
            raise UsageError("at most 4 index fields, not %d" % len(fields), "EINVAL")
        for i, (path, kind) in enumerate(fields):
            cfg.index_fields[i].path = path.encode()
            cfg.index_fields[i].type = _parse_enum(_lib.vdb_field_type_parse, kind,
                                                   "index field type")
        cfg.n_index_fields = len(fields)
        _call(_lib.vdb_collection_create, self._b, name.encode(), ctypes.byref(cfg))
        return self[name]

    def drop_collection(self, name, timeout=None):
        """Removes collection `name` (as vdb-drop does), under its writer lock: waits for
        another writer as `timeout` says (None: for ever; 0: LockedError at once)."""
        o = _writer_options(timeout)
        _call(_lib.vdb_collection_drop, self._b, name.encode(), ctypes.byref(o))

    def __getitem__(self, name):
        return Collection(self, name)

    def __contains__(self, name):
        return name in self.collections()

    def close(self):
        """Nothing to release (collections hold their own handles); for symmetry."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "vdb.Database(%r)" % self.path


class Collection:
    """A collection of a Database: a lock-free view for reading (refreshed before each call
    when a writer committed since) and the writer lock, taken per write call."""

    def __init__(self, db, name):
        self.db, self.name = db, name
        self._nb = name.encode()
        self._lock = threading.Lock()
        self._c = ctypes.c_void_p()
        self._searcher = ctypes.c_void_p()
        _call(_lib.vdb_collection_open, db._b, self._nb, ctypes.byref(self._c))
        cfg = _Config()
        _lib.vdb_collection_config_init(ctypes.byref(cfg))
        _lib.vdb_collection_get_config(self._c, ctypes.byref(cfg))
        self.dim = cfg.dim
        self.metric = _lib.vdb_metric_name(cfg.metric).decode()
        self.index = _lib.vdb_index_name(cfg.index).decode()
        self.quantize = _lib.vdb_quantize_name(cfg.quantize).decode()
        self.index_fields = {cfg.index_fields[i].path.decode():
                             _lib.vdb_field_type_name(cfg.index_fields[i].type).decode()
                             for i in range(cfg.n_index_fields)}

    # -- reading

    def _fresh(self):
        """Brings the view up to the last commit (callers hold self._lock)."""
        if not self._c:
            raise UsageError("the collection is closed", "EINVAL")
        if _lib.vdb_collection_stale(self._c):
            changed = ctypes.c_int()
            _call(_lib.vdb_collection_refresh, self._c, ctypes.byref(changed))
        if not self._searcher:
            _call(_lib.vdb_searcher_new, self._c, ctypes.byref(self._searcher))

    def count(self, filter=None):
        """Live records (matching filter, a dict or JSON text, when given)."""
        with self._lock:
            self._fresh()
            if filter is None:
                return _lib.vdb_collection_count(self._c)
            f = _filter(filter)
            try:
                out = ctypes.c_uint64()
                _call(_lib.vdb_collection_count_where, self._c, f, ctypes.byref(out))
                return out.value
            finally:
                _lib.vdb_filter_free(f)

    def __len__(self):
        return self.count()

    def _record(self, rec, with_vector=True):
        out = {"id": _id_value(rec.id)}
        if with_vector:
            out["vector"] = np.ctypeslib.as_array(rec.vector, (self.dim,)).copy()
        out["payload"] = (json.loads(ctypes.string_at(rec.payload, rec.payload_len))
                          if rec.payload else None)
        return out

    def _search_into(self, q, nq, k, o, hits):
        """Searches q's rows (k results each) into hits, k slots a query; returns the result
        counts. One query goes through the single-query call (fewer arrays to build)."""
        if nq == 1:
            n = ctypes.c_size_t()
            _call(_lib.vdb_searcher_search, self._searcher, q.ctypes.data_as(_FP), k,
                  ctypes.byref(o), hits, ctypes.byref(n))
            return [n.value]
        base, stride = q.ctypes.data, q.strides[0]
        qptrs = (_FP * nq)(*[ctypes.cast(base + i * stride, _FP) for i in range(nq)])
        hp = ctypes.POINTER(_Hit)
        at = ctypes.addressof(hits)
        hptrs = (hp * nq)(*[ctypes.cast(at + i * k * _HIT_SIZE, hp) for i in range(nq)])
        ks = (ctypes.c_size_t * nq)(*([k] * nq))
        ns = (ctypes.c_size_t * nq)()
        failed = ctypes.c_size_t()
        _call(_lib.vdb_searcher_search_batch, self._searcher, nq, qptrs, ks, ctypes.byref(o),
              hptrs, ns, ctypes.byref(failed))
        return list(ns)

    def get(self, id):
        """The record with this id, {"id", "vector" (float32 array), "payload"}, or None."""
        keep = []
        i = _make_id(id, keep)
        rec = _Record()
        err = _Error()
        with self._lock:
            self._fresh()
            st = _lib.vdb_get(self._c, ctypes.byref(i), ctypes.byref(rec), ctypes.byref(err))
            if st == _STATUS.index("ENOENT"):
                return None
            _check(st, err)
            return self._record(rec)

    def search(self, queries, k=10, filter=None, ef=None, exact=False, oversample=None,
               payloads=False):
        """The k nearest records of each query: (ids, scores), arrays of shape (n, k) for
        an (n, dim) array of queries, (k,) for one vector; fewer columns when the collection
        (or the filter) has fewer records. ids is an int64 array when every id returned is
        an integer, else an object array. With payloads=True a third item: the payloads (a
        list per query). Scores as the commands print them (l2: distance, lower is better;
        cosine and dot: similarity, higher is better)."""
        one = np.ndim(queries) == 1
        q = _vectors(queries, self.dim, "queries")
        nq = q.shape[0]
        if not 1 <= int(k) <= 100000:
            raise UsageError("k must be 1 to 100000, not %r" % (k,), "EINVAL")
        k = int(k)
        o = _SearchOptions()
        _lib.vdb_search_options_init(ctypes.byref(o))
        o.exact = 1 if exact else 0
        if ef is not None:
            o.ef = int(ef)
        if oversample is not None:
            o.oversample = float(oversample)
        hits = (_Hit * (nq * k))()
        f = _filter(filter)
        try:
            o.filter = f
            with self._lock:
                self._fresh()
                counts = self._search_into(q, nq, k, o, hits)
                width = max(counts) if nq else 0
                full = all(c == width for c in counts)
                # The hits and their ids as arrays: one call for all the ids, numpy for
                # the rest (a call per hit would cost more than the search).
                idbuf = (_Id * (nq * k))()
                if full and width == k:
                    _call(_lib.vdb_hit_ids, self._c, hits, nq * k, idbuf)
                else:
                    hp, ip = ctypes.POINTER(_Hit), ctypes.POINTER(_Id)
                    ha, ia = ctypes.addressof(hits), ctypes.addressof(idbuf)
                    for i in range(nq):
                        _call(_lib.vdb_hit_ids, self._c, ctypes.cast(ha + i * k * _HIT_SIZE, hp),
                              counts[i], ctypes.cast(ia + i * k * _ID_SIZE, ip))
                harr = _records(hits, _HIT_DTYPE).reshape(nq, k)[:, :width]
                iarr = _records(idbuf, _ID_DTYPE).reshape(nq, k)[:, :width]
                if full:
                    scores = harr["score"].copy()
                else:
                    filled = np.arange(width)[None, :] < np.array(counts)[:, None]
                    scores = np.where(filled, harr["score"], np.float32(np.nan))
                nums = iarr["num"]
                if full and not iarr["is_string"].any() and not (nums >> 63).any():
                    id_arr = nums.astype(np.int64)
                else:
                    id_arr = np.empty((nq, width), dtype=object)
                    for i in range(nq):
                        for j in range(counts[i]):
                            id_arr[i, j] = _id_value(idbuf[i * k + j])
                pls = None
                if payloads:
                    rec = _Record()
                    pls = [[None] * width for _ in range(nq)]
                    for i in range(nq):
                        for j in range(int(counts[i])):
                            _call(_lib.vdb_hit_record, self._c, ctypes.byref(hits[i * k + j]),
                                  ctypes.byref(rec))
                            if rec.payload:
                                pls[i][j] = json.loads(ctypes.string_at(rec.payload,
                                                                        rec.payload_len))
        finally:
            if f is not None:
                _lib.vdb_filter_free(f)
        if one:
            out = (id_arr[0], scores[0]) + ((pls[0],) if payloads else ())
        else:
            out = (id_arr, scores) + ((pls,) if payloads else ())
        return out

    # -- writing

    def _writer(self, timeout):
        o = _writer_options(timeout)
        w = ctypes.c_void_p()
        _call(_lib.vdb_writer_open, self.db._b, self._nb, ctypes.byref(o), ctypes.byref(w))
        return w

    def upsert(self, ids, vectors, payloads=None, timeout=None):
        """Inserts or replaces records: ids (ints or strs, one per row), vectors an (n, dim)
        array (float32 is read without a copy; other number types are converted), payloads
        None or one dict (or None) per row. One batch, durable when this returns (under
        the writer lock: `timeout` seconds to wait for it, None for ever, 0 not at all)."""
        v = _vectors(vectors, self.dim, "vectors")
        ids = list(ids) if not isinstance(ids, np.ndarray) else ids.tolist()
        n = v.shape[0]
        if len(ids) != n:
            raise DataError("%d ids for %d vectors" % (len(ids), n), "EDATA")
        if payloads is not None and len(payloads) != n:
            raise DataError("%d payloads for %d vectors" % (len(payloads), n), "EDATA")
        try:  # minified, as vdb-ingest stores payloads; NaN is not JSON
            texts = [None if p is None else
                     json.dumps(p, ensure_ascii=False, separators=(",", ":"),
                                allow_nan=False).encode("utf-8")
                     for p in payloads] if payloads is not None else None
        except ValueError as e:
            raise DataError("a payload is not JSON: %s" % e, "EDATA") from None
        for t in texts or []:
            if t is not None and not t.startswith(b"{"):
                raise DataError("a payload is a JSON object (a dict), not %s" % t[:40].decode(),
                                "EDATA")
        keep = []
        cids = [_make_id(i, keep) for i in ids]
        fp = ctypes.POINTER(ctypes.c_float)
        base = v.ctypes.data
        w = self._writer(timeout)
        try:
            consecutive = (texts is None and n and all(not c.is_string for c in cids) and
                           all(cids[i].num == cids[0].num + i for i in range(n)))
            err = _Error()
            if consecutive:
                # A graph's worth of rows or more is a block of its own, stored as a
                # segment with its graph (as a loaded file's last block); fewer are logged.
                bad = ctypes.c_size_t()
                st = _lib.vdb_writer_upsert_rows(w, cids[0].num, ctypes.cast(base, fp),
                                                 self.dim, n, _ROWS_LAST if n >= 1024 else 0,
                                                 ctypes.byref(bad), ctypes.byref(err))
                _check(st, _row_error(err, bad.value) if st == _EDATA else err)
                _call(_lib.vdb_writer_settle, w)
                return
            for i in range(n):
                t = texts[i] if texts is not None else None
                st = _lib.vdb_writer_upsert(w, ctypes.byref(cids[i]),
                                            ctypes.cast(base + i * v.strides[0], fp), t,
                                            len(t) if t else 0, ctypes.byref(err))
                _check(st, _row_error(err, i) if st else err)
            _call(_lib.vdb_writer_commit, w)
            # As a load ends (vdb-ingest): what was added gets a graph once it is worth one.
            _call(_lib.vdb_writer_settle, w)
        finally:
            _lib.vdb_writer_close(w)

    def delete(self, ids, timeout=None):
        """Deletes the records with these ids (absent ones are ignored): one batch."""
        if isinstance(ids, (int, str, np.integer)):
            ids = [ids]
        keep = []
        cids = [_make_id(i, keep) for i in ids]
        w = self._writer(timeout)
        try:
            for c in cids:
                _call(_lib.vdb_writer_delete, w, ctypes.byref(c))
            _call(_lib.vdb_writer_commit, w)
        finally:
            _lib.vdb_writer_close(w)

    def delete_where(self, filter, timeout=None):
        """Deletes every record whose payload matches filter (a dict or JSON text), as one
        batch; returns how many."""
        f = _filter(filter)
        try:
            w = self._writer(timeout)
            try:
                n = ctypes.c_uint64()
                _call(_lib.vdb_writer_delete_where, w, f, ctypes.byref(n))
                _call(_lib.vdb_writer_commit, w)
                return n.value
            finally:
                _lib.vdb_writer_close(w)
        finally:
            _lib.vdb_filter_free(f)

    def export(self, path, format=None, filter=None, order="storage", ids=None,
               payloads=None, durable=True, payload_columns=False, compression="zstd",
               row_group_rows=0):
        """Writes the live records (matching filter, when given) to file `path` atomically,
        as vdb-export -o does: JSON lines in the ingest format, .npy, .fvecs (ids and
        payloads then go to the files `ids` and `payloads`), CSV or Parquet; format from
        the name unless given; a name ending in .zst is compressed. order: "storage" or
        "id". Parquet: payload_columns adds a typed column per payload key of one type,
        compression is "zstd", "snappy" or "none", row_group_rows 0 sizes row groups at
        about 64 MiB. Returns the number of records written."""
        fmt = _lib.vdb_file_format_parse(format.encode()) if format is not None else \
            _lib.vdb_file_format_of(os.fsencode(path))
        if format is not None and not fmt:
            raise UsageError("unknown format %r (expected jsonl, npy, fvecs, csv or parquet)"
                             % format, "EINVAL")
        codecs = {"zstd": 0, "snappy": 1, "none": 2}
        if compression not in codecs:
            raise UsageError("compression is 'zstd', 'snappy' or 'none', not %r"
                             % (compression,), "EINVAL")
        o = _ExportOptions()
        _lib.vdb_export_options_init(ctypes.byref(o))
        if fmt:
            o.format = fmt
        o.output = os.fsencode(path)
        o.durable = int(bool(durable))
        if order not in ("storage", "id"):
            raise UsageError("order is 'storage' or 'id', not %r" % (order,), "EINVAL")
        o.order = 1 if order == "id" else 0
        o.ids_path = os.fsencode(ids) if ids is not None else None
        o.payloads_path = os.fsencode(payloads) if payloads is not None else None
        o.payload_columns = int(bool(payload_columns))
        o.parquet_codec = codecs[compression]
        o.row_group_rows = int(row_group_rows)
        f = _filter(filter)
        try:
            o.filter = f
            rows = ctypes.c_uint64()
            with self._lock:
                self._fresh()
                _call(_lib.vdb_export, self._c, ctypes.byref(o), ctypes.byref(rows))
            return rows.value
        finally:
            if f is not None:
                _lib.vdb_filter_free(f)

    def ingest(self, path, format=None, ids=None, payloads=None, id_offset=0, batch=None,
               skip_invalid=False, timeout=None):
        """Loads a file as vdb-ingest does, with the same loader: JSON lines, .npy, .fvecs,
        .bvecs, CSV or Parquet (format: from the name unless given), zstd-compressed or not, in
        durable batches (`batch` records; vector files in blocks stored as segments);
        ids/payloads: files aligned with a vector file's rows. Returns the counts
        (committed, upserted, deleted, not_found, rejected, batches, ...). A bad line stops
        the load with DataError naming the file and line; what came before it stays."""
        f = 0
        if format is not None:
            f = _lib.vdb_file_format_parse(format.encode())
            if not f:
                raise UsageError("unknown format %r (expected jsonl, npy, fvecs, bvecs, csv or "
                                 "parquet)" % format, "EINVAL")
        o = _LoaderOptions()
        _lib.vdb_loader_options_init(ctypes.byref(o))
        o.batch = int(batch or 0)
        o.skip_invalid = int(bool(skip_invalid))
        o.ids_path = os.fsencode(ids) if ids is not None else None
        o.payloads_path = os.fsencode(payloads) if payloads is not None else None
        o.id_offset = int(id_offset)
        loader = ctypes.c_void_p()
        _call(_lib.vdb_loader_new, ctypes.byref(o), ctypes.byref(loader))
        try:
            _call(_lib.vdb_loader_add_input, loader, os.fsencode(path), f)
            w = self._writer(timeout)
            try:
                _call(_lib.vdb_loader_run, loader, w)
            finally:
                _lib.vdb_writer_close(w)
            counts = _LoadCounts()
            _lib.vdb_loader_counts(loader, ctypes.byref(counts))
            return _stats(counts)
        finally:
            _lib.vdb_loader_free(loader)

    # -- life

    def close(self):
        with self._lock:
            if self._searcher:
                _lib.vdb_searcher_free(self._searcher)
                self._searcher = ctypes.c_void_p()
            if self._c:
                _lib.vdb_collection_close(self._c)
                self._c = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return "vdb.Collection(%r, %r, dim=%d, metric=%r)" % (self.db.path, self.name, self.dim,
                                                             self.metric)
