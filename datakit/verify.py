"""``datakit verify``: every shard readable, every member decodes, manifests and counts agree."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from . import fsio, media
from .shards import _read_parquet, manifest_uris, reject_part_uris, shard_pattern


@dataclass
class VerifyReport:
    shards: int = 0
    samples: int = 0
    members: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_member(name: str, data: bytes, doc: dict | None) -> str | None:
    """None if the member decodes, else what is wrong."""
    try:
        if name.endswith(".mp4"):
            frames = media.decode(data)
            want = (doc or {}).get(name.split(".")[0], {}) or {}
            if want.get("frames") and frames.shape[0] != want["frames"]:
                return f"{frames.shape[0]} frames, json says {want['frames']}"
        elif name.endswith(".png") or name.endswith(".jpg"):
            Image.open(io.BytesIO(data)).load()
        elif name == "json":
            json.loads(data)
        elif name == "txt":
            data.decode("utf-8")
    except Exception as e:  # noqa: BLE001 - report any decode failure
        return f"does not decode: {e}"
    return None


def verify(root: str, decode: bool = True, on_shard: Callable[[str], None] | None = None) -> VerifyReport:
    root = fsio.normalize(root)
    rep = VerifyReport()
    if not fsio.is_dir(root):
        rep.problems.append(f"{root}: not a directory")
        return rep
    files = fsio.list_files(root, recursive=True)
    names = {f.rsplit("/", 1)[-1] for f in files}
    for f in files:
        if fsio.is_tmp(f):
            rep.problems.append(f"{f}: temporary file left by an interrupted run (rerun the job to finish it)")
    for f in files:
        n = f.rsplit("/", 1)[-1]
        if f.rsplit("/", 1)[0] == root and n.endswith(".tar") and n[:-4] + ".parquet" not in names:
            rep.problems.append(f"{n}: shard without a manifest (incomplete; rerun the job)")
    keys: Counter[str] = Counter()
    for man_uri in manifest_uris(root):
        name = man_uri.rsplit("/", 1)[-1][: -len(".parquet")]
        rep.shards += 1
        if on_shard:
            on_shard(name)
        tar_uri = fsio.join(root, name + ".tar")
        if not fsio.exists(tar_uri):
            rep.problems.append(f"{name}: manifest without its tar")
            continue
        rows = _read_parquet(man_uri).to_pylist()
        expected = {r["key"]: {m["name"]: m for m in r["members"]} for r in rows}
        docs = {r["key"]: r for r in rows}
        keys.update(expected.keys())
        found: dict[str, dict[str, bytes]] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(fsio.read_bytes(tar_uri))) as tf:
                for ti in tf:
                    if not ti.isfile():
                        continue
                    key, _, member = ti.name.partition(".")
                    found.setdefault(key, {})[member] = tf.extractfile(ti).read()
        except (tarfile.TarError, OSError, EOFError) as e:
            rep.problems.append(f"{name}.tar: unreadable tar: {e}")
            continue
        for key in sorted(set(found) - set(expected)):
            rep.problems.append(f"{name}: sample {key} is in the tar but not in the manifest")
        for key, members in expected.items():
            rep.samples += 1
            got = found.get(key)
            if got is None:
                rep.problems.append(f"{name}: sample {key} is in the manifest but not in the tar")
                continue
            for m in sorted(set(members) - set(got)):
                rep.problems.append(f"{name}/{key}: member {m} missing from the tar")
            for m in sorted(set(got) - set(members)):
                rep.problems.append(f"{name}/{key}: member {m} not in the manifest")
            doc = None
            if "json" in got:
                try:
                    doc = json.loads(got["json"])
                except ValueError:
                    doc = None
            for m, data in got.items():
                if m not in members:
                    continue
                rep.members += 1
                want = members[m]
                if len(data) != want["size"] or hashlib.sha256(data).hexdigest() != want["sha256"]:
                    rep.problems.append(f"{name}/{key}: member {m} does not match its manifest size/sha256")
                    continue
                if decode and (err := _check_member(m, data, doc)):
                    rep.problems.append(f"{name}/{key}: member {m} {err}")
            if doc is not None and doc.get("key") != key:
                rep.problems.append(f"{name}/{key}: json key is {doc.get('key')!r}")
            if "txt" in got and docs[key].get("caption") != got["txt"].decode("utf-8", "replace"):
                rep.problems.append(f"{name}/{key}: caption differs from the manifest")
    for key, n in keys.items():
        if n > 1:
            rep.problems.append(f"sample {key} appears in {n} shards")
    summ_uri = fsio.join(root, "summary.json")
    if fsio.exists(summ_uri):
        counts = json.loads(fsio.read_text(summ_uri)).get("counts", {})
        rejects = sum(_read_parquet(u, ["key"]).num_rows for u in reject_part_uris(root))
        if counts.get("samples") != rep.samples or counts.get("rejects") != rejects:
            rep.problems.append(f"summary.json counts ({counts.get('samples')} samples, {counts.get('rejects')} "
                                f"rejects) differ from the manifests ({rep.samples}, {rejects}): rerun the job")
    elif rep.shards:
        rep.problems.append("summary.json is missing (the run did not finish; rerun the job)")
    if rep.shards == 0 and not rep.problems and not fsio.exists(summ_uri):
        rep.problems.append(f"{root}: no complete shards and no summary.json (not a finished datakit output)")
    return rep
