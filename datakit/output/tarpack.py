"""Samples as tar bytes, with where each member's data lies (for range reads).

A shard is the concatenation of ``pack(key, members)`` for each sample followed by
``END``; the offsets ``pack`` returns are relative to the start of its bytes, so the
writer adds the number of bytes already in the shard. The members are named
``KEY.NAME`` with mtime 0 and no owner, so the same sample always gives the same bytes
(and WebDataset reads them as one sample).
"""
from __future__ import annotations

import hashlib
import io
import tarfile

#: the end-of-archive marker: two zero blocks
END = b"\0" * (2 * tarfile.BLOCKSIZE)


def pack(key: str, members: dict[str, bytes]) -> tuple[bytes, list[dict]]:
    """The tar records of one sample and, per member, {name, offset, size, sha256}."""
    buf = io.BytesIO()
    rows = []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{key}.{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
            padded = -(-len(data) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            rows.append({"name": name, "offset": tar.offset - padded, "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest()})
        # tarfile closes with END and pads to a record size: keep only the sample's own blocks
        end = tar.offset
    return buf.getvalue()[:end], rows
