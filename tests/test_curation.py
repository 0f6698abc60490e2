"""Curate once, build many: `datakit curate`, `datakit build` and the clip index a `run` writes.

Scoring is counted with ``DATAKIT_STAGE_LOG`` (every stage appends the keys it processed),
so "scored once" is measured on the real stages, not assumed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from conftest import FAST, REPO, cli_env, kill_then_resume
from datakit.output.reader import open_output, reject_meta, sample_doc

pytestmark = pytest.mark.slow

DATAKIT = [sys.executable, "-m", "datakit.cli"]
SETS = [a for o in FAST for a in ("--set", o)]
#: provenance that differs between any two jobs (when and where a stage ran), and the verdict
PROVENANCE = ("timings", "workers", "filter", "config_hash")


def datakit(*args, env=None, timeout=400):
    return subprocess.run([*DATAKIT, *args], capture_output=True, text=True, timeout=timeout, env=env or cli_env(),
                          cwd=REPO)


def curate_cmd(inp, out, *extra):
    return ["curate", "pipelines/demo.yaml", "--input", str(inp), "--output", str(out), "-q", *SETS, *extra]


def build_cmd(index, out, *extra):
    return ["build", "pipelines/demo.yaml", "--index", str(index), "--output", str(out), "-q", *SETS, *extra]


def profile(path, name, rules):
    """A filter profile file: the offline profile's scoring with other rules."""
    tree = yaml.safe_load((REPO / "filters" / "offline.yaml").read_text())
    tree.update(name=name, rules=rules)
    path.write_text(yaml.safe_dump(tree))
    return str(path)


def index_rows(root):
    return {r["key"]: r for r in open_output(str(root)).index_rows()}


def samples(root):
    """key -> (json doc, members) of every committed sample."""
    return {row["key"]: (sample_doc(row), members) for row, members in open_output(str(root)).samples()}


def logged(folder, stage):
    return Counter(line for p in folder.glob(f"{stage}-*.log") for line in p.read_text().split())


def same_sample(a, b):
    """Members byte-identical; the json equal but for provenance."""
    (da, ma), (db, mb) = a, b
    assert set(ma) == set(mb)
    for name in ma:
        if name != "json":
            assert ma[name] == mb[name], name
    strip = lambda d: {k: v for k, v in d.items() if k not in PROVENANCE}  # noqa: E731
    assert strip(da) == strip(db)


@pytest.fixture(scope="module")
def curated(sample_dir, tmp_path_factory):
    """The module's clip index of the samples, made the hard way: `curate` (one clip per commit) is
    killed with its local Ray after its first commit, then rerun with a worker killed inside the
    writer at each point of a commit (Ray retries the task). Every stage of the rerun and of what
    follows logs the keys it processed. Returns the index, the log folder and the keys the killed
    run had committed."""
    tmp = tmp_path_factory.mktemp("curated")
    idx, log = tmp / "idx", tmp / "log"
    log.mkdir()
    # the killed run is not logged: its work is redone
    early = kill_then_resume([*DATAKIT, *curate_cmd(sample_dir, idx, "--set", "shard.max_samples=1")], idx,
                             ("after_index", "before_manifest"), tmp, lambda o: set(index_rows(o)),
                             DATAKIT_STAGE_LOG=str(log))
    return idx, log, early


def test_a_killed_curate_resumes_to_the_clean_index(curated, sample_dir, demo_fast_run):
    """The index a curate writes survives what a run survives (a killed build: the test below)."""
    idx, log, early = curated
    # a clean `run` holds the clean curate's index (test_run_writes_the_index_and_a_build_from_it_matches_the_run)
    want = sorted(index_rows(demo_fast_run))
    assert early and len(early) < len(want)
    keys = [row["key"] for row in open_output(str(idx)).index_rows(["key"])]
    assert sorted(keys) == want and len(keys) == len(set(keys))
    # the rerun scored each clip at most once (the clips of sources the killed run had not finished)
    scored = logged(log, "score")
    assert scored and max(scored.values()) == 1 and set(scored) <= set(want)
    r = datakit(*curate_cmd(sample_dir, idx, "--set", "shard.max_samples=1"))
    assert r.returncode == 0 and "indexed 0 clips" in r.stdout, r.stdout
    assert datakit("verify", str(idx), "-q").returncode == 0


def test_curate_scores_once_and_builds_per_profile_share_bytes(curated, sample_dir, tmp_path):
    idx, log, _ = curated
    env = cli_env(DATAKIT_STAGE_LOG=str(log))
    rows = index_rows(idx)
    # what the resumed curate scored and extracted (each clip at most once: the test above)
    curated_once, curate_extracted = logged(log, "score"), logged(log, "extract")
    assert len(rows) >= 8
    out = open_output(str(idx))
    assert out.kind == "curate" and out.count_samples() == 0 and not list((idx / "shards").iterdir())
    for row in rows.values():        # every score of every clip, with the spec's verdict and the record's meta
        assert row["filter"]["profile"] == "offline" and row["scores"]["sharpness"] > 0
        assert row["source_uri"].startswith(str(sample_dir)) and row["end_frame"] - row["start_frame"] == 17
        assert reject_meta(row)["scores"]["sharpness"] == pytest.approx(row["scores"]["sharpness"])
    spec_kept = {k for k, r in rows.items() if r["filter"]["passed"]}
    assert 0 < len(spec_kept) < len(rows), "the demo's profile turns at least one clip down"
    s = datakit("stats", str(idx), "--json")
    assert s.returncode == 0 and json.loads(s.stdout)["counts"]["indexed"] == len(rows)

    # build A: the spec's own profile, one sample per commit. Its driver (and the local Ray it started)
    # is killed after the first commit; the rerun resumes it with a worker killed inside the writer at
    # each point of a commit (Ray retries the task); a third run has nothing left to do
    a, b = tmp_path / "a", tmp_path / "b"
    one = ["--set", "shard.max_samples=1"]
    early = kill_then_resume([*DATAKIT, *build_cmd(idx, a, *one)], a, ("after_tar", "before_manifest"), tmp_path,
                             lambda o: set(samples(o)), DATAKIT_STAGE_LOG=str(log))     # the killed run: not logged
    assert early and len(early) < len(spec_kept)
    r = datakit(*build_cmd(idx, a, *one))
    assert r.returncode == 0 and "wrote 0 samples" in r.stdout, r.stdout
    got = [row["key"] for row in open_output(str(a)).manifest_rows(["key"])]
    assert sorted(got) == sorted(spec_kept) and len(got) == len(set(got))
    assert datakit("verify", str(a), "-q").returncode == 0
    # build B: a looser profile (one rule of the offline profile)
    loose = profile(tmp_path / "loose.yaml", "loose", [{"name": "too_dark", "metric": "brightness", "min": 0.08}])
    r = datakit(*build_cmd(idx, b, "--profile", loose), env=env)
    assert r.returncode == 0, r.stderr[-2000:]

    # builds score nothing (each clip was scored by curate) and extract only what they keep (the
    # resumed build only what the killed one had not committed)
    assert logged(log, "score") == curated_once
    sa, sb = samples(a), samples(b)
    assert set(sa) == spec_kept and set(sb) == set(rows)
    assert logged(log, "extract") == curate_extracted + Counter(set(sa) - early) + Counter(list(sb))
    assert {d["filter"]["profile"] for d, _ in sa.values()} == {"offline"}
    assert {d["filter"]["profile"] for d, _ in sb.values()} == {"loose"}
    for k in sa:                      # kept by both: the same bytes
        same_sample(sa[k], sb[k])
    for k, (doc, members) in sb.items():   # the index's record, carried into the sample
        assert doc["scores"] == pytest.approx(rows[k]["scores"])
        assert rows[k]["caption"] == members["txt"].decode() and rows[k]["caption"]
    assert datakit("verify", str(b), "-q").returncode == 0

    # a looser profile into A adds only the clips it did not hold
    r = datakit(*build_cmd(idx, a, "--profile", loose), env=env)
    added = len(rows) - len(spec_kept)
    assert r.returncode == 0 and f"wrote {added} sample{'s' * (added != 1)} in" in r.stdout, r.stdout + r.stderr
    assert logged(log, "extract") == (curate_extracted + Counter(set(sa) - early) + Counter(list(sb))
                                      + Counter(set(rows) - spec_kept))
    sa2 = samples(a)
    assert set(sa2) == set(rows)
    for k in sa:
        assert sa2[k][1] == sa[k][1]            # what was there is untouched
    for k in set(rows) - spec_kept:
        same_sample(sa2[k], sb[k])
    # a tighter profile into B would have to remove samples: one line, exit 2
    tight = profile(tmp_path / "tight.yaml", "tight", [{"name": "too_dark", "metric": "brightness", "min": 0.4}])
    r = datakit(*build_cmd(idx, b, "--profile", tight), env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not keep" in r.stderr, r.stderr
    assert "new --output" in r.stderr and set(samples(b)) == set(rows)
    assert logged(log, "score") == curated_once                           # still scored once

    # the trainer reads both builds at once: a clip kept by both is one item; the index alone is no corpus
    from datakit.train.data import DataError, build_index

    entries = [e for es in build_index([str(a), str(b)]).values() for e in es]
    assert sorted(e.key for e in entries) == sorted(rows)
    with pytest.raises(DataError, match="clip index"):
        build_index([str(idx)])


def test_run_writes_the_index_and_a_build_from_it_matches_the_run(demo_fast_run, tmp_path):
    run = demo_fast_run                     # `datakit run pipelines/demo.yaml` with these settings
    out = open_output(str(run))
    rows = index_rows(run)
    kept = {row["key"] for row in out.manifest_rows(["key"])}
    rejected = {x["key"] for x in out.reject_rows(["key", "stage"]) if x["stage"] == "filter"}
    assert set(rows) == kept | rejected and rejected
    assert {k for k, row in rows.items() if row["stage"] == "filter"} == rejected
    assert datakit("verify", str(run), "-q").returncode == 0
    built = tmp_path / "built"
    r = datakit(*build_cmd(run, built))
    assert r.returncode == 0, r.stderr[-2000:]
    sr, sbuilt = samples(run), samples(built)
    assert set(sbuilt) == kept
    for k in kept:
        same_sample(sr[k], sbuilt[k])


def test_build_refuses_what_it_cannot_build_with_one_line(curated, tmp_path):
    idx = curated[0]
    r = datakit(*build_cmd(idx, tmp_path / "o", "--set", "split.frames=21"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "curated with other settings" in r.stderr, r.stderr
    r = datakit(*build_cmd(tmp_path / "nothing", tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = datakit(*build_cmd(idx, idx))
    assert r.returncode == 2 and "the index itself" in r.stderr
    r = datakit(*build_cmd(idx, tmp_path / "o", "--profile", "no_such_profile"))
    assert r.returncode == 2 and "no_such_profile" in r.stderr
