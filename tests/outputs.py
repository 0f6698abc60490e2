"""Reading a run's output in tests, through the format's one reader."""
from __future__ import annotations

from datakit import fsio
from datakit.output import layout
from datakit.output.reader import open_output, reject_meta, sample_doc


def docs(out) -> list[dict]:
    """Every committed sample: its json doc plus the manifest's shard fields (caption, shard, members)."""
    rows = []
    for row in open_output(str(out)).manifest_rows():
        d = sample_doc(row)
        d.update(caption=row["caption"], shard=row["shard"], members=row["members"])
        rows.append(d)
    return rows


def keys(out) -> list[str]:
    return sorted(r["key"] for r in open_output(str(out)).manifest_rows(["key"]))


def rejects(out) -> list[dict]:
    """Committed reject rows, each with ``meta``: the record's metadata it recorded."""
    return [{**r, "meta": reject_meta(r)} for r in open_output(str(out)).reject_rows()]


def tars(out) -> list[str]:
    return [u for u in fsio.list_files(fsio.join(fsio.normalize(str(out)), layout.SHARDS), recursive=False)
            if u.endswith(".tar")]


def manifests(out) -> list[str]:
    return open_output(str(out)).manifest_uris()
