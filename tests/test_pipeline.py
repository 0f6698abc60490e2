"""End to end under local Ray: the demo pipeline on the real sample clips."""
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile

import pytest
import webdataset as wds
import yaml

from conftest import REPO, cli_env
from datakit import media, runner, spec
from datakit.output.errors import OutputError
from datakit.verify import verify
from outputs import docs, keys, manifests, rejects, tars

pytestmark = pytest.mark.slow


def demo_spec(inp, out, *extra):
    return spec.load(REPO / "pipelines" / "demo.yaml", [f"input={inp}", f"output={out}", "shard.max_samples=2", *extra])


@pytest.fixture(scope="module")
def clean_run(sample_dir, tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("clean") / "out"
    res = runner.run(demo_spec(sample_dir, out), progress=False)      # the demo as shipped
    return out, res


def test_demo_run_makes_verified_shards(clean_run):
    out, res = clean_run
    rows = docs(out)
    rej = rejects(out)
    # 3 sources, 4 clips each; the quality filter is the only stage that may drop clips
    assert res.samples_written == len(rows) >= 8 and len(rows) + len(rej) == 12 == res.samples_written + \
        res.rejects_written
    assert all(x["stage"] == "filter" for x in rej)
    assert len(res.shards_written) == len(tars(out)) and all(len({r["shard"] for r in rows if r["shard"] == s}) == 1
                                                             for s in res.shards_written)
    # the writers send the driver status rows only
    assert res.driver_bytes / 12 < 2048
    assert verify(str(out)).ok
    summary = json.loads((out / "meta" / "summary.json").read_text())
    assert summary["counts"]["samples"] == len(rows) and summary["counts"]["rejects"] == len(rej)
    assert summary["counts"]["sources"] == 3 and summary["counts"]["clips"] == 12
    assert summary["stages"]["split"] == {"in": 3, "rejected": 0, "out": 12, "unit": "source -> clip"}
    assert summary["stages"]["filter"]["rejected"] == len(rej)
    for r in rows:
        assert r["num_frames"] == 17 and r["hr"]["height"] == 128 and r["hr"]["width"] % 16 == 0
        assert (r["lr"]["width"], r["lr"]["height"]) == (r["hr"]["width"] // 4, r["hr"]["height"] // 4)
        assert r["degradations"][0]["profile"] == "realbasicvsr" and r["caption_source"] == "sidecar"
        assert {"sharpness", "niqe", "motion"} <= set(r["scores"])
        assert set(r["workers"]) == set(r["timings"])          # which process made each stage's output


def test_shards_read_back_with_webdataset_and_ray(clean_run, ray_session):
    out, _ = clean_run
    shard_files = sorted(tars(out))
    want = set(keys(out))
    samples = list(wds.WebDataset(shard_files, shardshuffle=False))
    assert {s["__key__"] for s in samples} == want
    for s in samples:
        assert set(s) >= {"hr.mp4", "lr.mp4", "txt", "json"}
        doc = json.loads(s["json"])
        hr, lr = media.decode(s["hr.mp4"]), media.decode(s["lr.mp4"])
        assert hr.shape[0] == lr.shape[0] == doc["num_frames"] == 17
        assert (hr.shape[2] // 4, hr.shape[1] // 4) == (lr.shape[2], lr.shape[1])
    ds = ray_session.data.read_webdataset(shard_files, decoder=None)
    assert {r["__key__"] for r in ds.take_all()} == want


def test_manifest_offsets_point_at_the_members_and_globs_read_one_kind(clean_run):
    import duckdb
    import pandas as pd

    out, _ = clean_run
    for row in docs(out):
        data = (out / "shards" / (row["shard"] + ".tar")).read_bytes()
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            in_tar = {ti.name: (ti.offset_data, ti.size) for ti in tf}
        for m in row["members"]:
            assert in_tar[f"{row['key']}.{m['name']}"] == (m["offset"], m["size"])
            blob = data[m["offset"]:m["offset"] + m["size"]]
            assert hashlib.sha256(blob).hexdigest() == m["sha256"]
    n = duckdb.sql(f"select count(*) from '{out}/manifests/*.parquet'").fetchall()[0][0]
    assert n == len(keys(out))
    assert len(pd.read_parquet(str(out / "rejects"))) == len(rejects(out))


def test_verify_catches_a_flipped_byte(clean_run, tmp_path):
    out, _ = clean_run
    flipped = tmp_path / "flipped"
    shutil.copytree(out, flipped)
    row = docs(flipped)[0]
    tar = flipped / "shards" / (row["shard"] + ".tar")
    m = next(m for m in row["members"] if m["name"] == "hr.mp4")
    data = bytearray(tar.read_bytes())
    data[m["offset"] + m["size"] // 2] ^= 0xFF
    tar.write_bytes(bytes(data))
    rep = verify(str(flipped))
    assert not rep.ok and any("hr.mp4" in p for p in rep.problems)


def test_rerun_adds_nothing_a_new_prefix_duplicates_nothing_other_configs_are_refused(clean_run, sample_dir):
    out, _ = clean_run
    before = sorted(p.relative_to(out) for p in out.rglob("*") if "summary" not in p.name)
    res = runner.run(demo_spec(sample_dir, out), progress=False)
    assert res.samples_written == 0 and res.skipped_sources == 3
    res = runner.run(demo_spec(sample_dir, out, "shard.prefix=other", "shard.max_samples=5"), progress=False)
    assert res.samples_written == res.rejects_written == 0 and res.skipped_sources == 3
    assert sorted(p.relative_to(out) for p in out.rglob("*") if "summary" not in p.name) == before
    with pytest.raises(OutputError, match="different config"):
        runner.run(demo_spec(sample_dir, out, "split.frames=21"), progress=False)
    assert len(keys(out)) == len(set(keys(out))) and len(keys(out)) + len(rejects(out)) == 12


# 8 logical CPUs: with 2, Ray Data's per-operator reservations may leave room for one extract task at a
# time (seen on CI), which is a property of the budget, not of how the job is cut into tasks; with 2
# CPUs and the reservations off (as the README suggests for small machines) the clips spread again
@pytest.mark.parametrize("ray_settings", [["ray.num_cpus=8"], ["ray.num_cpus=2", "ray.stage_reservations=false"]],
                         ids=["8cpus", "2cpus-no-reservations"])
def test_a_long_sources_clips_are_made_by_several_workers(sample_dir, tmp_path, ray_settings):
    """After split each clip is a task of its own: one long source keeps both CPUs busy.

    Every extract batch (4 clips) is made to take a second (``DATAKIT_STAGE_SLEEP``) so that clips which
    may run side by side do; with one task per source they would still run one after another.
    A Ray of its own: in the tests' shared Ray, actors of earlier jobs may still hold a CPU."""
    out = tmp_path / "out"
    pipeline = tmp_path / "spread.yaml"
    pipeline.write_text(yaml.safe_dump({
        "name": "spread", "task": "t2v", "input": str(sample_dir / "bikes.mp4"), "output": str(out),
        "stages": [{"stage": "probe"},
                   {"stage": "split", "frames": 17, "max_clips_per_source": 4, "detector": "none"},
                   {"stage": "extract", "height": 128, "preset": "fast"}],
        "shard": {"prefix": "spread", "max_samples": 2}}))
    r = subprocess.run([sys.executable, "-m", "datakit.cli", "run", str(pipeline), "-q",
                        *[a for o in ray_settings for a in ("--set", o)]],
                       capture_output=True, text=True, timeout=300, cwd=REPO,
                       env=cli_env(DATAKIT_STAGE_SLEEP="extract:1"))
    assert r.returncode == 0, r.stderr[-3000:]
    rows = docs(out)
    assert len(rows) == 4 and len({r["source_id"] for r in rows}) == 1
    split = {r["workers"]["split"] for r in rows}
    extract = {r["workers"]["extract"] for r in rows}
    assert len(split) == 1 and len(extract) >= 2, (split, extract)
    assert len(manifests(out)) == 2
