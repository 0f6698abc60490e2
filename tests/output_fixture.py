"""A small format-2 output written the way the format says (tarpack + schema + parquet), for
tests of the reader that must not depend on a pipeline run."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from conftest import pattern_frames
from datakit import media
from datakit.output import layout, parquet, schema, tarpack
from datakit.output.settings import OutputSettings

METRICS = ("sharpness", "motion")


def settings(root: Path) -> OutputSettings:
    return OutputSettings(root=str(root), prefix="t", config_hash="cafe", pipeline="fixture", task="t2v",
                          metrics=METRICS)


@lru_cache(maxsize=None)
def clip(seed: int) -> bytes:
    """A real 17-frame H.264 clip (32x32)."""
    return media.encode(pattern_frames(17, 32, 32, seed=seed), 24.0, codec="libx264", crf=18, preset="ultrafast")


def write_batch(root: Path, samples: list[dict], rejects: list[dict] = ()) -> str:
    """One committed batch: ``samples`` are sample json docs (members: json, txt, hr.mp4 bytes)."""
    st = settings(root)
    keys = [d["key"] for d in samples] + [r["key"] for r in rejects]
    name = layout.batch_name(st.prefix, keys)
    data, rows = b"", []
    for doc in samples:
        members = {"hr.mp4": clip(len(rows)), "json": schema.sample_json_bytes(doc),
                   "txt": f"caption of {doc['key']}".encode()}
        blob, mrows = tarpack.pack(doc["key"], members)
        rows.append({**doc, "caption": members["txt"].decode(), "shard": name,
                     "members": [{**m, "offset": m["offset"] + len(data)} for m in mrows]})
        data += blob
    for sub in (layout.SHARDS, layout.MANIFESTS, layout.REJECTS, layout.META):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if rows:
        (root / layout.SHARDS / f"{name}.tar").write_bytes(data + tarpack.END)
    if rejects:
        (root / layout.REJECTS / f"{name}.parquet").write_bytes(parquet.encode(schema.reject_table(list(rejects), st)))
    (root / layout.MANIFESTS / f"{name}.parquet").write_bytes(parquet.encode(schema.manifest_table(rows, st)))
    return name


def doc(key: str, source: str = "s1", **scores) -> dict:
    return {"format_version": 2, "key": key, "task": "t2v", "pipeline": "fixture", "config_hash": "cafe",
            "source_uri": f"/v/{source}.mp4", "source_id": source, "source_clips": 3, "start_frame": 0,
            "end_frame": 16, "num_frames": 17, "fps": 24.0, "scores": scores, "degradations": [],
            "hr": {"width": 32, "height": 32, "frames": 17, "codec": "libx264", "crf": 18},
            "timings": {"split": 0.5, "score": 1.0}}


def reject(key: str, source: str = "s1", reason: str = "soft", **scores) -> dict:
    return {"key": key, "source_uri": f"/v/{source}.mp4", "source_id": source, "source_clips": 3,
            "start_frame": 0, "end_frame": 16, "stage": "filter", "reason": reason, "detail": "d",
            "json": {"source_id": source, "scores": scores}}


def write_config(root: Path) -> None:
    (root / layout.META).mkdir(parents=True, exist_ok=True)
    (root / layout.META / layout.CONFIG).write_text(json.dumps(
        {"config_hash": "cafe", "format_version": layout.FORMAT_VERSION,
         "spec": {"name": "fixture", "task": "t2v", "stages": [{"stage": "split"}, {"stage": "score"},
                                                                {"stage": "filter"}]}}))


def make_output(root: Path) -> dict[str, str]:
    """Two committed batches (3 samples, 2 rejects) and meta/config.json; returns {"a": name, "b": name}."""
    write_config(root)
    a = write_batch(root, [doc("k1", sharpness=10.0, motion=1.0), doc("k2", sharpness=20.0, motion=2.0)],
                    [reject("k3", sharpness=1.0, motion=0.5)])
    b = write_batch(root, [doc("k4", "s2", sharpness=30.0)], [reject("k5", "s2", reason="dark", sharpness=2.0)])
    return {"a": a, "b": b}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
