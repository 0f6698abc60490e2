"""``datakit verify``: every committed batch reads back, every member decodes, manifests and counts agree.

The structural checks (leftovers, damaged manifests, rejects and tars) are
:func:`datakit.output.check.check`, the same list resume acts on; here each intact
batch's tar is walked header by header and compared with its manifest (samples, member
offsets, sizes, sha256), and every member is decoded.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from . import fsio, media
from .output import layout
from .output.check import check
from .output.errors import CorruptFile
from .output.reader import Output, file_rows, open_output, sample_doc


@dataclass
class VerifyReport:
    shards: int = 0
    samples: int = 0
    members: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_member(name: str, data: bytes, doc: dict) -> str | None:
    """None if the member decodes, else what is wrong."""
    try:
        if name.endswith(".mp4"):
            frames = media.decode(data)
            want = doc.get(name.split(".")[0]) or {}
            if isinstance(want, dict) and want.get("frames") and frames.shape[0] != want["frames"]:
                return f"{frames.shape[0]} frames, json says {want['frames']}"
        elif name.endswith((".png", ".jpg")):
            Image.open(io.BytesIO(data)).load()
        elif name == "json":
            json.loads(data)
        elif name == "txt":
            data.decode("utf-8")
    except Exception as e:  # noqa: BLE001 - report any decode failure
        return f"does not decode: {' '.join(str(e).split())[:200]}"
    return None


def _walk_tar(uri: str):
    """(key, member name, data offset, bytes) of every file in a tar, streamed."""
    fs, path = fsio.resolve(uri)
    with fs.open_input_stream(path) as f, tarfile.open(fileobj=f, mode="r|") as tf:
        for ti in tf:
            if ti.isfile():
                key, _, member = ti.name.rsplit("/", 1)[-1].partition(".")
                yield key, member, ti.offset_data, tf.extractfile(ti).read()


def _verify_batch(out: Output, name: str, decode: bool, rep: VerifyReport, keys: Counter) -> None:
    man_uri = layout.manifest_uri(out.root, name)
    listed = list(file_rows(man_uri))
    keys.update(r["key"] for r in listed)
    rep.samples += len(listed)
    rows = {r["key"]: r for r in listed}
    if not rows:
        return
    tar_uri = out.tar_uri(name)
    expected = {k: {m["name"]: m for m in r["members"]} for k, r in rows.items()}
    found: dict[str, set[str]] = {k: set() for k in rows}
    try:
        for key, member, offset, data in _walk_tar(tar_uri):
            where = f"{tar_uri}: {key}.{member}"
            want = expected.get(key, {}).get(member)
            if key not in expected:
                rep.problems.append(f"{tar_uri}: sample {key} is in the tar but not in the manifest")
                continue
            if want is None:
                rep.problems.append(f"{where} is not in the manifest")
                continue
            found[key].add(member)
            rep.members += 1
            if offset != want["offset"]:
                rep.problems.append(f"{where} is at byte {offset}, the manifest says {want['offset']}")
            if len(data) != want["size"] or hashlib.sha256(data).hexdigest() != want["sha256"]:
                rep.problems.append(f"{where} does not match its manifest's size/sha256; "
                                    "rerun the same command to re-make it")
                continue
            if decode and (err := _check_member(member, data, sample_doc(rows[key], man_uri))):
                rep.problems.append(f"{where} {err}")
    except (tarfile.TarError, OSError, EOFError) as e:
        rep.problems.append(f"{tar_uri}: unreadable tar ({e}); rerun the same command to re-make it")
        return
    for key, names in expected.items():
        if not found[key]:
            rep.problems.append(f"{tar_uri}: sample {key} is in the manifest but not in the tar")
            continue
        for m in sorted(set(names) - found[key]):
            rep.problems.append(f"{tar_uri}: {key}.{m} is missing from the tar")
        doc = sample_doc(rows[key], man_uri)
        if doc.get("key") != key:
            rep.problems.append(f"{man_uri}: the json of sample {key} says key {doc.get('key')!r}")


def verify(root: str | Output, decode: bool = True, on_shard: Callable[[str], None] | None = None) -> VerifyReport:
    """Check an output; NotAnOutput (raised) when ``root`` is not one."""
    out = root if isinstance(root, Output) else open_output(root)
    rep = VerifyReport()
    problems = check(out.root)
    rep.problems += [p.line() for p in problems]
    damaged = {p.batch for p in problems if p.damaged}
    keys: Counter[str] = Counter()
    rejects = 0
    for name in out.batches():
        rep.shards += 1
        if on_shard:
            on_shard(name)
        if name in damaged:
            continue
        try:
            _verify_batch(out, name, decode, rep, keys)
            rej = layout.rejects_uri(out.root, name)
            rejects += sum(1 for _ in file_rows(rej, ["key"])) if fsio.exists(rej) else 0
        except CorruptFile as e:
            rep.problems.append(str(e))
    for key, n in keys.items():
        if n > 1:
            rep.problems.append(f"sample {key} appears in {n} batches")
    try:
        summ = out.summary()
    except CorruptFile as e:
        rep.problems.append(str(e))
        return rep
    uri = layout.summary_uri(out.root)
    if summ is not None and not damaged:
        counts = summ.get("counts", {})
        if counts.get("samples") != rep.samples or counts.get("rejects") != rejects:
            rep.problems.append(f"{uri}: counts ({counts.get('samples')} samples, {counts.get('rejects')} "
                                f"rejects) differ from the manifests ({rep.samples}, {rejects}); "
                                "rerun the same command to rewrite it")
    elif summ is None and rep.shards:
        rep.problems.append(f"{uri} is missing (the run did not finish); rerun the same command to finish it")
    return rep
