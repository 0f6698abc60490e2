"""The declared manifest and rejects schema: the same for any rows, typed, and a round trip."""
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from datakit.output import schema
from datakit.output.settings import OutputSettings

SETTINGS = OutputSettings(root="/tmp/x", prefix="p", config_hash="abc", pipeline="demo", task="t2v",
                          metrics=("sharpness", "motion", "dover"))


def _doc(key: str, **extra) -> dict:
    doc = {"format_version": 2, "key": key, "task": "t2v", "pipeline": "demo", "config_hash": "abc",
           "datakit_version": "0.1", "source_uri": "/v/a.mp4", "source_id": "s1", "source_clips": 2,
           "start_frame": 0, "end_frame": 17, "num_frames": 17, "fps": 24.0, "start_time": 0.0,
           "scores": {}, "degradations": []}
    doc.update(extra)
    return doc


def _row(doc: dict, shard: str = "p-0123456789abcdef") -> dict:
    data = schema.sample_json_bytes(doc)
    return {**doc, "caption": "a cat", "shard": shard,
            "members": [{"name": "json", "offset": 512, "size": len(data), "sha256": "0" * 64}]}


FULL = _doc(
    "k1", scores={"sharpness": 10.5, "motion": 2, "dover": 0.4, "extra_metric": 1.0},
    hr={"width": 64, "height": 48, "frames": 17, "codec": "libx264", "crf": 18, "preset": "medium"},
    lr={"width": 16, "height": 12, "frames": 17, "codec": "libx264rgb", "lossless": True},
    sdedit={"backend": "wan", "model_id": "tiny", "synthetic_model": True, "steps": 4, "k": 2, "k_range": [1, 3],
            "preset": "light", "sigma_start": 0.5, "timestep_start": 500.0, "guidance": 1.0, "shift": 3.0,
            "scheduler": "UniPC", "negative_prompt": "", "seed": (1 << 62) + 5,
            "base": {"width": 64, "height": 48, "frames": 17}, "padded_frames": 0, "dtype": "float32", "batch": 1},
    degradations=[{"stage": "sdedit", "profile": "light", "seed": 3, "params": {"k": 2}},
                  {"stage": "synthetic", "profile": "realesrgan", "seed": 7, "overrides": {},
                   "device": {"backend": "numpy"}, "params": {"blur": [1.0, 2.0]}}],
    filter={"profile": "demo", "passed": True, "failed": []},
    refs={"task": "mi2v", "segmenter": {"backend": "opencv"}, "frame": {"index": 40}, "num_ids": 2, "found": 3},
    source={"width": 640, "height": 480, "fps": 25.0, "vfr": False, "codec": "h264"},
    caption_source="sidecar", synthetic_models=True)
SPARSE = _doc("k2", hr={"width": "wide"}, scores={"motion": float("nan")}, fps="x")


def test_schema_is_the_same_for_any_rows():
    a = schema.manifest_table([_row(FULL)], SETTINGS)
    b = schema.manifest_table([_row(SPARSE)], SETTINGS)
    c = schema.manifest_table([], SETTINGS)
    assert a.schema == b.schema == c.schema == schema.manifest_schema(SETTINGS)
    assert a.schema.field("scores").type == pa.struct([(m, pa.float64()) for m in SETTINGS.metrics])
    assert schema.format_version_of(a.schema) == 2


def test_typed_values_and_json_round_trip():
    buf = io.BytesIO()
    pq.write_table(schema.manifest_table([_row(FULL), _row(SPARSE)], SETTINGS), buf)
    rows = pq.read_table(io.BytesIO(buf.getvalue())).to_pylist()
    full, sparse = rows
    assert full["scores"] == {"sharpness": 10.5, "motion": 2.0, "dover": 0.4}
    assert full["hr"]["width"] == 64 and full["hr"]["fps"] == 24.0 and full["lr"]["lossless"] is True
    assert full["sdedit"]["k"] == 2 and full["sdedit"]["seed"] == (1 << 62) + 5
    assert full["sdedit"]["base"] == {"width": 64, "height": 48, "frames": 17}
    assert [d["profile"] for d in full["degradations"]] == ["light", "realesrgan"]
    assert full["degradations"][1]["backend"] == "numpy"
    assert full["refs"]["backend"] == "opencv" and full["refs"]["frame_index"] == 40
    assert full["members"][0]["offset"] == 512 and full["caption"] == "a cat"
    # a value that does not fit its type is null in the typed view, exact in the json
    assert sparse["hr"]["width"] is None and sparse["fps"] is None and sparse["sdedit"] is None
    assert sparse["scores"]["dover"] is None and sparse["scores"]["motion"] != sparse["scores"]["motion"]
    for row, doc in ((full, FULL), (sparse, SPARSE)):
        assert row["json"].encode() == schema.sample_json_bytes(doc)
        assert json.loads(row["json"])["scores"].get("extra_metric") == doc["scores"].get("extra_metric")


def test_rejects_keep_typed_scores():
    meta = {"source_uri": "/v/a.mp4", "scores": {"sharpness": 3.0, "motion": 0.1}}
    rows = [{"key": "k", "source_uri": "/v/a.mp4", "source_id": "s", "source_clips": 1, "start_frame": 0,
             "end_frame": 9, "stage": "filter", "reason": "sharpness", "detail": "too soft", "json": meta},
            {"key": "s", "source_uri": "/v/b.mp4", "source_id": "s", "source_clips": None, "start_frame": None,
             "end_frame": None, "stage": "probe", "reason": "unreadable", "detail": "x", "json": "{}"}]
    t = schema.reject_table(rows, SETTINGS)
    assert t.schema == schema.reject_schema(SETTINGS) == schema.reject_table([], SETTINGS).schema
    assert t.column("scores").to_pylist() == [{"sharpness": 3.0, "motion": 0.1, "dover": None}, None]
    assert json.loads(t.column("json")[0].as_py()) == meta
    assert set(schema.REJECT_SCHEMA.names) <= set(t.schema.names)


def test_no_metrics_means_no_scores_column_and_parquet_still_writes():
    bare = OutputSettings(root="/tmp/x", prefix="p", config_hash="abc", pipeline="demo", task="t2v")
    for t in (schema.manifest_table([_row(FULL)], bare), schema.reject_table([], bare)):
        assert "scores" not in t.schema.names
        pq.write_table(t, io.BytesIO())
