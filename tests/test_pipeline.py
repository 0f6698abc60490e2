"""End to end under local Ray: the demo pipeline on the real sample clips."""
import glob
import io
import json
import shutil
import tarfile

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from conftest import REPO
from datakit import media, runner, shards, spec
from datakit.verify import verify

pytestmark = pytest.mark.slow


def demo_spec(inp, out, *extra):
    return spec.load(REPO / "pipelines" / "demo.yaml", [f"input={inp}", f"output={out}", "shard.max_samples=2", *extra])


@pytest.fixture(scope="module")
def clean_run(sample_dir, tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("clean") / "out"
    res = runner.run(demo_spec(sample_dir, out), progress=False)      # the demo as shipped
    return out, res


def _manifest_rows(out):
    return [r for u in shards.manifest_uris(str(out)) for r in shards.read_manifest(u)]


def test_demo_run_makes_verified_shards(clean_run):
    out, res = clean_run
    rows = _manifest_rows(out)
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    # 3 sources, 4 clips each; the quality filter is the only stage that may drop clips
    assert res.samples_written == len(rows) >= 8 and len(rows) + len(rejects) == 12
    assert all(x["stage"] == "filter" for x in rejects)
    assert len(res.shards_written) == (len(rows) + 1) // 2
    assert verify(str(out)).ok
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"sources": 3, "samples": len(rows), "shards": (len(rows) + 1) // 2,
                                 "rejects": len(rejects), "clips": 12}
    assert summary["stages"]["split"] == {"in": 3, "rejected": 0, "out": 12, "unit": "source -> clip"}
    assert summary["stages"]["filter"]["rejected"] == len(rejects)
    for r in rows:
        assert r["num_frames"] == 17 and r["hr"]["height"] == 128 and r["hr"]["width"] % 16 == 0
        assert (r["lr"]["width"], r["lr"]["height"]) == (r["hr"]["width"] // 4, r["hr"]["height"] // 4)
        assert r["degradations"][0]["profile"] == "realbasicvsr" and r["caption_source"] == "sidecar"
        assert {"sharpness", "niqe", "motion"} <= set(r["scores"])


def test_shards_read_back_with_webdataset_and_ray(clean_run, ray_session):
    out, _ = clean_run
    tars = sorted(glob.glob(str(out / "demo-*.tar")))
    keys = {r["key"] for r in _manifest_rows(out)}
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    assert {s["__key__"] for s in samples} == keys
    for s in samples:
        assert set(s) >= {"hr.mp4", "lr.mp4", "txt", "json"}
        doc = json.loads(s["json"])
        hr, lr = media.decode(s["hr.mp4"]), media.decode(s["lr.mp4"])
        assert hr.shape[0] == lr.shape[0] == doc["num_frames"] == 17
        assert (hr.shape[2] // 4, hr.shape[1] // 4) == (lr.shape[2], lr.shape[1])
    ds = ray_session.data.read_webdataset(tars, decoder=None)
    assert {r["__key__"] for r in ds.take_all()} == keys


def test_manifests_match_tar_contents_and_read_in_pandas_and_duckdb(clean_run):
    import hashlib

    import duckdb
    import pandas as pd

    out, _ = clean_run
    for man in sorted(out.glob("demo-*.parquet")):
        rows = shards.read_manifest(str(man))
        with tarfile.open(man.with_suffix(".tar")) as tf:
            in_tar = {ti.name: tf.extractfile(ti).read() for ti in tf}
        listed = {f"{r['key']}.{m['name']}": m for r in rows for m in r["members"]}
        assert set(listed) == set(in_tar)
        for name, m in listed.items():
            assert m["size"] == len(in_tar[name]) and m["sha256"] == hashlib.sha256(in_tar[name]).hexdigest()
    df = pd.read_parquet(str(out / "demo-000000.parquet"))
    assert len(df) == 2 and "key" in df.columns
    n = duckdb.sql(f"select count(*) from read_parquet('{out}/demo-*.parquet', union_by_name=true)").fetchall()[0][0]
    assert n == len(_manifest_rows(out))


def test_verify_catches_a_flipped_byte_and_a_missing_member(clean_run, tmp_path):
    out, _ = clean_run
    flipped = tmp_path / "flipped"
    shutil.copytree(out, flipped)
    tar = flipped / "demo-000001.tar"
    data = bytearray(tar.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tf:
        ti = next(t for t in tf if t.name.endswith(".hr.mp4"))
    data[ti.offset_data + ti.size // 2] ^= 0xFF
    tar.write_bytes(bytes(data))
    rep = verify(str(flipped))
    assert not rep.ok and any("hr.mp4 does not match" in p for p in rep.problems)

    missing = tmp_path / "missing"
    shutil.copytree(out, missing)
    tar = missing / "demo-000002.tar"
    with tarfile.open(tar) as tf:
        kept = [(ti, tf.extractfile(ti).read()) for ti in tf if not ti.name.endswith(".lr.mp4")]
    with tarfile.open(tar, "w") as tf:
        for ti, b in kept:
            tf.addfile(ti, io.BytesIO(b))
    rep = verify(str(missing))
    assert not rep.ok and any("member lr.mp4 missing" in p for p in rep.problems)


def test_rerun_of_a_complete_output_adds_nothing_and_other_configs_are_refused(clean_run, sample_dir):
    out, _ = clean_run
    before = sorted(p.name for p in out.iterdir())
    res = runner.run(demo_spec(sample_dir, out), progress=False)
    assert res.samples_written == 0 and res.skipped_sources == 3
    assert sorted(p.name for p in out.iterdir()) == before
    with pytest.raises(shards.OutputError):
        runner.run(demo_spec(sample_dir, out, "split.frames=21"), progress=False)
    assert pq.read_table(out / "rejects.parquet").num_rows == 12 - len(_manifest_rows(out))
