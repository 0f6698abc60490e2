"""The writer and resume without Ray: commit order, names, crashes inside a write, repairs."""
import json
import logging
import os
import subprocess
import sys
import tarfile

import pytest
import webdataset as wds

from conftest import REPO
from datakit.output import layout, resume, writer
from datakit.output.errors import OutputError
from datakit.output.reader import open_output
from datakit.output.settings import OutputSettings
from datakit.records import Record, clip_id, source_id

SPEC = {"name": "t", "stages": [{"stage": "probe"}, {"stage": "split", "frames": 5}]}


def _settings(root, **kw):
    base = dict(root=str(root), prefix="s", config_hash="abc123", pipeline="t", task="t2v",
                metrics=("sharpness", "motion"))
    return OutputSettings(**{**base, **kw})


def _sample(src, start, n_clips=3, size=100):
    sid = source_id(src)
    return Record(key=clip_id(src, start, start + 5),
                  meta={"source_uri": src, "source_id": sid, "source_clips": n_clips, "caption": f"clip {start}",
                        "start_frame": start, "end_frame": start + 5, "scores": {"sharpness": 1.5 + start}},
                  media={"hr.mp4": bytes([start % 256]) * size, "lr.mp4": b"lr-%d" % start})


def _source_reject(src):
    sid = source_id(src)
    return Record(key=sid, meta={"source_uri": src, "source_id": sid}).rejected("probe", "unreadable", "cannot open")


def _clip_reject(src, start, n_clips=3):
    rec = _sample(src, start, n_clips)
    rec.meta["scores"] = {"sharpness": 0.25, "motion": 3.0}
    return rec.rejected("filter", "low_detail", "sharpness 0.25 < 1")


def _open(root, **kw):
    s = _settings(root, **kw)
    return s, resume.open_for_run(s, SPEC)


def _keys(root):
    return sorted(r["key"] for r in open_output(str(root)).manifest_rows(["key"]))


def test_a_batch_is_committed_with_offsets_and_read_back(tmp_path):
    s, _ = _open(tmp_path / "out")
    recs = [_sample("/v/a.mp4", 5 * i) for i in range(3)] + [_clip_reject("/v/b.mp4", 0), _source_reject("/v/x.mp4")]
    status = writer.write_batch(recs, s)
    assert [x["verdict"] for x in status] == ["kept"] * 3 + ["rejected"] * 2
    name = layout.batch_name("s", [r.key for r in recs])
    assert {x["shard"] for x in status} == {name}
    assert all(len(json.dumps(x)) < 400 for x in status)              # small rows go back to the driver
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "shards").iterdir()) == [name + ".tar"]
    assert sorted(p.name for p in (out / "manifests").iterdir()) == [name + ".parquet"]
    assert sorted(p.name for p in (out / "rejects").iterdir()) == [name + ".parquet"]
    # members found by offset are the bytes the record held; WebDataset reads the same tar
    got = {row["key"]: members for row, members in open_output(str(out)).samples()}
    for r in recs[:3]:
        assert got[r.key]["hr.mp4"] == r.media["hr.mp4"] and got[r.key]["txt"] == r.meta["caption"].encode()
        assert json.loads(got[r.key]["json"])["scores"] == r.meta["scores"]
    wd = {x["__key__"]: x for x in wds.WebDataset(str(out / "shards" / (name + ".tar")), shardshuffle=False)}
    assert set(wd) == {r.key for r in recs[:3]} and wd[recs[0].key]["lr.mp4"] == recs[0].media["lr.mp4"]
    rej = list(open_output(str(out)).reject_rows())
    assert {(x["stage"], x["reason"]) for x in rej} == {("filter", "low_detail"), ("probe", "unreadable")}
    assert [x["scores"] for x in rej if x["stage"] == "filter"] == [{"sharpness": 0.25, "motion": 3.0}]


def test_same_records_in_any_order_give_the_same_shard_and_a_committed_one_is_kept(tmp_path):
    recs = [_sample("/v/a.mp4", 5 * i) for i in range(4)]
    s1, _ = _open(tmp_path / "one")
    s2, _ = _open(tmp_path / "two")
    writer.write_batch(recs, s1)
    writer.write_batch(list(reversed(recs)), s2)
    [t1], [t2] = (list((tmp_path / d / "shards").iterdir()) for d in ("one", "two"))
    assert t1.name == t2.name and t1.read_bytes() == t2.read_bytes()
    man = tmp_path / "one" / "manifests" / (t1.stem + ".parquet")
    before = (man.stat().st_mtime_ns, t1.stat().st_mtime_ns)
    writer.write_batch(recs, s1)                      # a retried task: the commit stands
    assert (man.stat().st_mtime_ns, t1.stat().st_mtime_ns) == before


def test_a_batch_is_cut_at_max_samples_and_max_bytes_and_rejects_only_get_a_manifest(tmp_path):
    s, _ = _open(tmp_path / "out", max_samples=2)
    recs = [_sample("/v/a.mp4", 5 * i, n_clips=5) for i in range(5)] + [_clip_reject("/v/b.mp4", 0)]
    status = writer.write_batch(recs, s)
    by_shard = {}
    for x in status:
        by_shard.setdefault(x["shard"], []).append(x["verdict"])
    # samples in key order, two per shard; the reject rides with the last shard
    assert sorted(map(sorted, by_shard.values())) == [["kept", "kept"], ["kept", "kept"], ["kept", "rejected"]]
    assert len(list((tmp_path / "out" / "rejects").iterdir())) == 1
    # bytes: a shard is closed once it holds max_bytes: samples of ~5 kB with 4 kB -> one each
    s_b, _ = _open(tmp_path / "bytes", max_bytes=4000)
    status = writer.write_batch([_sample("/v/c.mp4", 5 * i, size=5000) for i in range(3)], s_b)
    assert len({x["shard"] for x in status}) == 3
    # a batch of rejects only: a manifest with no rows commits its rejects file, no tar
    s_r, _ = _open(tmp_path / "rej")
    status = writer.write_batch([_source_reject("/v/y.mp4"), _clip_reject("/v/b.mp4", 5)], s_r)
    name = status[0]["shard"]
    assert not list((tmp_path / "rej" / "shards").iterdir())
    assert open_output(str(tmp_path / "rej")).count_samples() == 0
    assert len(list(open_output(str(tmp_path / "rej")).reject_rows())) == 2
    assert (tmp_path / "rej" / "manifests" / (name + ".parquet")).exists()


def test_resume_reads_every_prefix_and_says_what_is_left(tmp_path):
    out = tmp_path / "out"
    s, _ = _open(out)
    writer.write_batch([_sample("/v/a.mp4", 5 * i) for i in range(3)], s)      # a: complete
    writer.write_batch([_sample("/v/b.mp4", 0, n_clips=2), _source_reject("/v/bad.mp4")], s)  # b: 1 of 2
    s2, state = _open(out, prefix="other")            # the shard prefix is not part of the config
    assert set(state.done_sources.to_pylist()) == {source_id("/v/a.mp4"), source_id("/v/bad.mp4")}
    assert state.skip_keys == {_sample("/v/b.mp4", 0).key}
    assert state.samples == 4 and state.rejects == 1 and len(state.done_keys) == 5
    assert state.is_done(__import__("pyarrow").array([source_id("/v/a.mp4"), source_id("/v/b.mp4")])).to_pylist() \
        == [True, False]
    writer.write_batch([_sample("/v/b.mp4", 5, n_clips=2)], s2)
    _, again = _open(out)
    assert source_id("/v/b.mp4") in again.done_sources.to_pylist() and not again.skip_keys
    assert len(_keys(out)) == 5 == len(set(_keys(out)))


def test_config_mismatch_a_file_and_an_old_output_are_refused(tmp_path):
    _open(tmp_path / "out")
    with pytest.raises(OutputError, match="different config"):
        _open(tmp_path / "out", config_hash="other")
    assert json.loads((tmp_path / "out" / "meta" / "config.json").read_text())["config_hash"] == "abc123"
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        _open(tmp_path / "f")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text("{}")
    with pytest.raises(OutputError, match="format 1"):
        _open(tmp_path / "old")


def test_leftovers_and_damaged_batches_are_removed_and_said(tmp_path, caplog):
    out = tmp_path / "out"
    s, _ = _open(out)
    st1 = writer.write_batch([_sample("/v/a.mp4", 0, n_clips=1)], s)
    st2 = writer.write_batch([_sample("/v/b.mp4", 0, n_clips=1)], s)
    (out / "shards" / "s-00000000000000aa.tar").write_bytes(b"never committed")
    (out / "rejects" / "s-00000000000000aa.parquet").write_bytes(b"never committed")
    (out / "shards" / "s-00000000000000bb.tar.tmp-abc").write_bytes(b"half a tar")
    (out / "notes.txt").write_text("not ours: kept")
    man = out / "manifests" / (st2[0]["shard"] + ".parquet")
    data = bytearray(man.read_bytes())
    data[len(data) // 2] ^= 0xFF                          # a flipped byte in a committed manifest
    man.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="datakit"):
        _, state = _open(out)
    assert sorted(state.cleaned) == ["s-00000000000000aa.parquet", "s-00000000000000aa.tar",
                                     "s-00000000000000bb.tar.tmp-abc"]
    assert state.remade == [st2[0]["shard"]]
    assert any(str(man) in r.getMessage() and "made again" in r.getMessage() for r in caplog.records)
    assert not man.exists() and not (out / "shards" / (st2[0]["shard"] + ".tar")).exists()
    assert (out / "notes.txt").exists()
    assert set(state.done_sources.to_pylist()) == {source_id("/v/a.mp4")}
    assert _keys(out) == [st1[0]["key"]]


_KILLED_WRITE = """
import sys
sys.path.insert(0, {tests!r})
from test_output_write import _sample, _clip_reject, _settings
from datakit.output import writer
recs = [_sample("/v/a.mp4", 5 * i) for i in range(3)] + [_clip_reject("/v/b.mp4", 0)]
writer.write_batch(recs, _settings({root!r}))
"""


@pytest.mark.parametrize("point", ["after_tar", "after_rejects", "before_manifest"])
def test_a_writer_killed_inside_a_commit_leaves_nothing_a_rerun_keeps_twice(tmp_path, point):
    out = tmp_path / "out"
    s, _ = _open(out)
    writer.write_batch([_sample("/v/c.mp4", 0, n_clips=1)], s)      # an earlier committed batch
    env = dict(os.environ, DATAKIT_FAULT_INJECT=f"write:{point}", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", _KILLED_WRITE.format(tests=str(REPO / "tests"), root=str(out))],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 70, r.stderr[-2000:]
    assert len(list((out / "manifests").iterdir())) == 1        # nothing of the killed batch is committed
    assert list((out / "shards").iterdir()) != []
    _, state = _open(out)
    assert state.cleaned and set(state.done_sources.to_pylist()) == {source_id("/v/c.mp4")}
    assert len(list((out / "shards").iterdir())) == 1 and not list((out / "rejects").iterdir())
    recs = [_sample("/v/a.mp4", 5 * i) for i in range(3)] + [_clip_reject("/v/b.mp4", 0)]
    writer.write_batch(recs, s)
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 4
    assert len(list(open_output(str(out)).reject_rows())) == 1
    with tarfile.open(next((out / "shards").glob(layout.batch_name("s", [r.key for r in recs]) + ".tar"))) as tf:
        assert len(tf.getnames()) == 3 * 4                      # hr, lr, txt, json per sample
