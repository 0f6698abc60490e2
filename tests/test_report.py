"""`datakit inspect` and `stats`: the report opened in a real headless Chromium."""
import json
import os
import shutil
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

from badinputs import make_bad_inputs
from conftest import FAST, REPO
from datakit import runner, shards, spec, summary
from datakit.report import build_site, charts, compile_where
from datakit.report.where import WhereError

EVIL = '<script>window.__pwned = 1</script><b>bold</b> & "quoted" <img src=x onerror="window.__pwned=2">'


def test_where_expressions():
    row = {"task": "t2v", "scores": {"musiq": 55.0}, "source": {"height": 720}, "caption_source": "sidecar"}
    assert compile_where("scores.musiq > 40 and source.height >= 720")(row)
    assert not compile_where("scores.musiq > 60 or task in ['edit']")(row)
    assert compile_where("scores['musiq'] == 55 and not scores.dover")(row)
    assert not compile_where("scores.dover > 0.5")(row)          # missing field: comparison is false
    for bad in ("__import__('os')", "scores.__class__", "open('x')", "1 +"):
        with pytest.raises(WhereError):
            compile_where(bad)


def test_histogram_draws_thresholds():
    svg = charts.histogram_svg([1.0, 2.0, 2.5, 9.0], "scores.x", lo=2.0, hi=8.0)
    assert svg.count('class="thr"') == 2 and "min 2" in svg and "max 8" in svg
    assert svg.count('class="bar"') == 20
    assert "no values" in charts.histogram_svg([], "empty")


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:  # the test set-up installs Debian's chromium when it is missing
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True,
                       timeout=900)
        path = shutil.which("chromium")
    assert path, "chromium could not be installed"
    return path


@pytest.fixture(scope="module")
def report_output(sample_dir, tmp_path_factory, ray_session):
    base = tmp_path_factory.mktemp("report")
    inp = base / "in"
    inp.mkdir()
    weird = inp / 'car<phone> & "x".mp4'
    shutil.copy(sample_dir / "carphone_pristine.mp4", weird)
    weird.with_suffix(".txt").write_text(EVIL)
    shutil.copy(sample_dir / "bikes.mp4", inp / "bikes.mp4")
    bad = make_bad_inputs(inp)
    shutil.copy(bad["not_video"], inp / "<b>not<i>.mp4")
    out = base / "out"
    s = spec.load(REPO / "pipelines" / "demo.yaml",
                  [f"input={inp}", f"output={out}", "split.max_clips_per_source=2", *FAST])
    runner.run(s, progress=False)
    site = base / "site"
    res = build_site(str(out), site)
    return out, site, res


def test_report_loads_cleanly_in_chromium(report_output):
    from playwright.sync_api import sync_playwright

    out, site, res = report_output
    filtered = pq.read_table(out / "rejects.parquet").to_pylist()
    filtered = [x for x in filtered if x["stage"] == "filter"]
    assert res["samples"] + len(filtered) == 4 and res["rejects"] == 6 + len(filtered)
    pages = [site / "index.html", site / "rejects.html", *sorted((site / "samples").glob("*.html"))]
    assert len(pages) == 2 + res["samples"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            page.evaluate("() => Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")
            broken = page.evaluate("() => Array.from(document.images)"
                                   ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
            assert broken == [], (path.name, broken)
            assert page.evaluate("() => document.querySelectorAll('video').length") == 0
            assert page.evaluate("() => window.__pwned === undefined"), path.name
            shot = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(
                __import__("io").BytesIO(page.screenshot(full_page=True))).convert("L"), dtype=np.float32)
            assert shot.std() > 10, f"{path.name} looks blank"
        # the untrusted caption and file names are shown as text, not run or rendered
        sample = next(p for p in pages[2:] if "carphone" in p.read_text() or "car&lt;phone" in p.read_text())
        page.goto(sample.as_uri())
        assert page.inner_text("p.caption") == EVIL
        assert page.evaluate("() => document.querySelectorAll('p.caption *').length") == 0
        assert 'car<phone> & "x".mp4' in page.inner_text("body")
        page.goto((site / "rejects.html").as_uri())
        assert "<b>not<i>.mp4" in page.inner_text("body")
        assert page.evaluate("() => document.querySelectorAll('.card b b').length") == 0
        browser.close()
    assert errors == []


def test_index_counts_and_stats_agree_with_manifests(report_output):
    out, site, _ = report_output
    rows = [r for u in shards.manifest_uris(str(out)) for r in shards.read_manifest(u)]
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    s = summary.build(str(out))
    assert s["counts"]["samples"] == len(rows)
    assert s["counts"]["rejects"] == len(rejects) >= 6
    assert s["counts"]["clips"] == 4
    assert s["counts"]["sources"] == len({r["source_id"] for r in rows} | {r["source_id"] for r in rejects})
    assert s["rejects_by_reason"] == {k: sum(1 for r in rejects if r["reason"] == k) for k in
                                      {r["reason"] for r in rejects}}
    assert s["stages"]["split"]["out"] == sum({r["source_id"]: r["source_clips"] for r in rows}.values())
    cli = subprocess.run([os.sys.executable, "-m", "datakit.cli", "stats", str(out), "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(cli.stdout)["counts"] == s["counts"]
    index = (site / "index.html").read_text()
    assert f"<td>samples</td><td>{len(rows)}</td>" in index and f"<td>rejects</td><td>{len(rejects)}</td>" in index
