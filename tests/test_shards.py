"""The shard sink without Ray: commit order, leftovers of a crash, resume state."""
import json
import tarfile

import pytest

from datakit import shards, spec
from datakit.records import Record, clip_id, source_id


def _spec(out, **shard):
    return spec.parse({"name": "t", "input": "x", "output": str(out),
                       "stages": [{"stage": "probe"}, {"stage": "split", "frames": 5}],
                       "shard": {"prefix": "s", **shard}})


def _sample(src, start, n_clips=3):
    sid = source_id(src)
    return Record(key=clip_id(src, start, start + 5),
                  meta={"source_uri": src, "source_id": sid, "source_clips": n_clips, "caption": f"clip {start}"},
                  media={"hr.mp4": b"fake-hr-%d" % start})


def test_shards_and_manifests_are_committed_and_resumed(tmp_path):
    s = _spec(tmp_path / "out", max_samples=2)
    state = shards.open_output(s)
    w = shards.ShardWriter(s, state)
    for i in range(3):
        w.add(_sample("/v/a.mp4", 5 * i))
    w.add(_sample("/v/a.mp4", 0))                       # a duplicate delivery is ignored
    w.add(Record(key=source_id("/v/bad.mp4"), meta={"source_uri": "/v/bad.mp4", "source_id": source_id("/v/bad.mp4")})
          .rejected("probe", "unreadable", "cannot open"))
    w.add(_sample("/v/b.mp4", 0, n_clips=2))             # b has a second clip still to do
    w.close()
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["config.json", "rejects", "rejects.parquet", "s-000000.parquet", "s-000000.tar",
                     "s-000001.parquet", "s-000001.tar"]
    with tarfile.open(tmp_path / "out" / "s-000000.tar") as tf:
        members = tf.getnames()
    key = _sample("/v/a.mp4", 0).key
    assert sorted(members[:3]) == [f"{key}.hr.mp4", f"{key}.json", f"{key}.txt"]
    rows = shards.read_manifest(str(tmp_path / "out" / "s-000000.parquet"))
    assert rows[0]["key"] == key and rows[0]["caption"] == "clip 0" and rows[0]["scores"] == {}
    assert {m["name"] for m in rows[0]["members"]} == {"hr.mp4", "txt", "json"}

    again = shards.open_output(s)
    assert again.next_shard == 2 and again.next_rejects_part == 1
    assert again.done_sources == {source_id("/v/a.mp4"), source_id("/v/bad.mp4")}
    assert again.resume_skip == {_sample("/v/b.mp4", 0).key}     # b is partial: skip its done clip
    assert len(again.done_keys) == 5


def test_leftovers_of_a_crash_are_removed(tmp_path):
    s = _spec(tmp_path / "out", max_samples=1)
    state = shards.open_output(s)
    w = shards.ShardWriter(s, state)
    w.add(_sample("/v/a.mp4", 0))
    out = tmp_path / "out"
    (out / "s-000001.tar").write_bytes(b"tar whose manifest was never written")
    (out / "s-000002.tar.tmp-abc").write_bytes(b"half a tar")
    (out / "rejects" / "part-000000.parquet.tmp-x").write_bytes(b"half")
    (out / "notes.tar").write_bytes(b"not ours: kept")
    again = shards.open_output(s)
    assert sorted(again.cleaned) == ["rejects/part-000000.parquet.tmp-x", "s-000001.tar", "s-000002.tar.tmp-abc"]
    assert (out / "notes.tar").exists() and (out / "s-000000.tar").exists()
    assert again.next_shard == 1


def test_a_different_config_is_refused(tmp_path):
    shards.open_output(_spec(tmp_path / "out"))
    other = spec.parse({"name": "t", "input": "x", "output": str(tmp_path / "out"),
                        "stages": [{"stage": "probe"}, {"stage": "split", "frames": 9}]})
    with pytest.raises(shards.OutputError, match="different config"):
        shards.open_output(other)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["config_hash"] == _spec("x").config_hash()
