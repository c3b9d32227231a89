"""Snapshot archives taken apart and put together again by the tests: CRC32C, zstd (the
command), tar images, and crafting directories of snapshots with chosen times and bases from
two real archives (a full one and an incremental on it)."""
import io
import json
import shutil
import subprocess
import tarfile

ZSTD = shutil.which('zstd')
TAR = shutil.which('tar')


def crc32c(data, crc=0):
    """CRC32C (Castagnoli), bit by bit per byte through a table."""
    table = crc32c.table
    if table is None:
        table = crc32c.table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


crc32c.table = None


def zstd_compress(data, *args):
    return subprocess.run([ZSTD, '-q', '-c', *args], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def zstd_decompress(data):
    return subprocess.run([ZSTD, '-q', '-d', '-c'], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def checked(kind, body):
    """A vdb checked-text file image."""
    return b'vdb-%s 1 %d %08x\n' % (kind.encode(), len(body), crc32c(body)) + body


def tar_members(raw):
    """[(TarInfo, bytes)] of an uncompressed tar image."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode='r:') as t:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isfile() else b''
            out.append((m, data))
    return out


def tar_build(members):
    """An uncompressed ustar image of [(TarInfo, bytes)]."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:', format=tarfile.USTAR_FORMAT) as t:
        for info, data in members:
            info = _copy(info)
            if info.isfile():
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(info)
    return buf.getvalue()


def _copy(info):
    c = tarfile.TarInfo(info.name)
    for k in ('size', 'mode', 'mtime', 'type', 'linkname', 'uid', 'gid', 'devmajor', 'devminor'):
        setattr(c, k, getattr(info, k))
    return c




def rewrite_manifest(raw_tar, fn):
    """raw_tar (an uncompressed snapshot) with its manifest JSON passed through fn."""
    members = tar_members(raw_tar)
    head, body = members[0][1].split(b'\n', 1)
    version = int(head.split()[1])
    m = fn(json.loads(body))
    text = json.dumps(m).encode() + b'\n'
    image = b'vdb-snapshot %d %d %08x\n' % (version, len(text), crc32c(text)) + text
    return tar_build([(members[0][0], image)] + members[1:])


def craft_chain(full, inc, out_dir, spec):
    """Writes snapshots into out_dir from two real archives: `full` (a full snapshot) and
    `inc` (an incremental on it). spec: [(file, created, base)] in order; base None makes a
    copy of the full one, else a copy of the incremental on that earlier file. Each gets its
    own id and the time `created` ("2026-12-01T03:00:00Z") in its manifest."""
    with open(full, 'rb') as f:
        full_raw = zstd_decompress(f.read())
    with open(inc, 'rb') as f:
        inc_raw = zstd_decompress(f.read())
    ids = {}
    for n, (name, created, base) in enumerate(spec):
        new_id = '%032x' % (0xabc000 + n)

        def edit(m):
            m['id'] = new_id
            m['created'] = created
            if base is None:
                return m
            old_base = m['base']
            text = json.dumps(m).replace(json.dumps(old_base), json.dumps(base))
            m = json.loads(text)
            for d in m['depends']:
                d['id'] = ids[base]
            return m
        raw = rewrite_manifest(full_raw if base is None else inc_raw, edit)
        ids[name] = new_id
        with open('%s/%s' % (out_dir, name), 'wb') as f:
            f.write(zstd_compress(raw))
    return ids
