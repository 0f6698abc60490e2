"""`datakit inspect` and `stats`: the report's parts, and the site driven in a real headless Chromium.

One demo run builds the output (with an untrusted caption, untrusted file names and one
injected reject row whose every text field is markup); one Chromium serves the module.
"""
import html
import io
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from badinputs import make_bad_inputs
from conftest import REPO
from conftest import pattern_frames
from datakit import media, runner, spec, summary
from datakit.output import reader, writer
from datakit.records import Record
from datakit.report import build_site, compile_where
from datakit.report import charts, data, fmt, pages, params, site as sitemod
from datakit.report.where import WhereError

EVIL = '<script>window.__pwned = 1</script><b>bold</b> & "quoted" <img src=x onerror="window.__pwned=2">'
EVIL_REJECT = {
    "key": 'k"><img src=x onerror="window.__pwned=3">',
    "source_uri": 'javascript:window.__pwned=4//<svg onload="window.__pwned=5">.mp4',
    "reason": '<i>odd</i>&reason="x"',
    "detail": '<script>window.__pwned=6</script> & more',
}
# what may never appear in a page: markup that only the untrusted strings above contain
INJECTED = 'script:not([src]), img[src="x"], [onerror], [onload], i, svg[onload]'
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


# ---------------------------------------------------------------- pure parts

def test_where_expressions():
    row = {"task": "t2v", "scores": {"musiq": 55.0}, "source": {"height": 720}, "caption_source": "sidecar"}
    assert compile_where("scores.musiq > 40 and source.height >= 720")(row)
    assert not compile_where("scores.musiq > 60 or task in ['edit']")(row)
    assert compile_where("scores['musiq'] == 55 and not scores.dover")(row)
    assert not compile_where("scores.dover > 0.5")(row)          # missing field: comparison is false
    for bad in ("__import__('os')", "scores.__class__", "open('x')", "1 +"):
        with pytest.raises(WhereError):
            compile_where(bad)


def test_numbers_are_formatted_for_people():
    assert [fmt.num(v) for v in (0.0, 1253.3041, 0.45347929, 0.000200544, 22456, True, None)] == \
        ["0", "1,253", "0.4535", "0.000201", "22,456", "yes", ""]
    assert fmt.rule_label("low_detail", 100, None) == "low_detail ≥ 100"
    assert fmt.rule_label("shaky", None, 10.0) == "shaky ≤ 10"
    assert fmt.safe_name("7eb06212d8c15f3aa3b3ba398d08af04") == "7eb06212d8c15f3aa3b3ba398d08af04"
    odd = [fmt.safe_name(k) for k in ('a/../b"<x>', 'a/../b"<y>')]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", k) for k in odd) and odd[0] != odd[1]


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)


def test_histogram_stacks_verdicts_and_labels_every_threshold_inside():
    ns = "{http://www.w3.org/2000/svg}"
    kept, rejected = [1.0, 2.0, 2.5, 9.0, 9.5], [0.5, 0.7, 12.0]
    # two thresholds close together must not overprint; one near the right edge stays inside
    thr = [charts.Threshold("static ≥ 2", 2.0), charts.Threshold("also_low ≥ 2.2", 2.2),
           charts.Threshold("shaky ≤ 11.9", 11.9)]
    root = _svg(charts.histogram_svg(kept, rejected, thr, metric="motion", width=400, height=200))
    # every value is counted once, in its verdict's colour (tooltips say the counts per bin)
    tips = [g.find(f"{ns}title").text for g in root.iter(f"{ns}g") if g.get("class") == "bin"]
    counts = [tuple(map(int, re.search(r"(\d+) kept, (\d+) rejected", t).groups())) for t in tips]
    assert sum(k for k, _ in counts) == len(kept) and sum(r for _, r in counts) == len(rejected)
    n_bars = sum(1 for el in root.iter(f"{ns}rect") if el.get("class") in ("kept", "rejected"))
    assert n_bars == sum((k > 0) + (r > 0) for k, r in counts)
    # every threshold: a line and a label whose text box lies inside the plot, no two overlapping
    labels = [el for el in root.iter(f"{ns}text") if el.get("class") == "thrlab"]
    assert sorted(el.text for el in labels) == sorted(t.label for t in thr)
    assert sum(1 for el in root.iter(f"{ns}line") if el.get("class") == "thr") == 3
    boxes = []
    for el in labels:
        x, y, w = float(el.get("x")), float(el.get("y")), len(el.text) * charts.CHAR_W
        x0 = x if el.get("text-anchor") == "start" else x - w
        assert 0 <= x0 and x0 + w <= 400 and 0 < y < 200, el.text
        boxes.append((x0, x0 + w, y))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] != b[2] or a[1] < b[0] or b[1] < a[0], (a, b)
    assert "no values" in charts.histogram_svg([], [], [], metric="empty")


def test_parameters_become_readable_rows():
    p = {"frames": 3, "order1": {"applied": True, "blur": {"applied": True, "sigma_x": [1.2, 1.25, 1.3],
                                                            "omega": [], "size": 11},
                                 "jpeg": {"applied": False, "quality": []}, "noise": {"sigma": [2.0, 2.0, 2.0]}},
         "final": {"video": {"codec": "mpeg4", "bitrate": 22456}}}
    rows = params.param_rows(p)
    by = {(r.step, r.name): r for r in rows}
    assert by[("general", "frames")].text == "3"
    walk = by[("order1 › blur", "sigma_x")]
    assert walk.series == [1.2, 1.25, 1.3] and walk.text.startswith("1.2 – 1.3")
    assert ("order1 › blur", "omega") not in by                       # empty lists are left out
    assert by[("order1 › jpeg", "")].text == "not applied" and not by[("order1 › jpeg", "")].applied
    assert by[("order1 › noise", "sigma")].series is None                # a constant walk is one number
    assert by[("final › video", "bitrate")].text == "22,456"
    steps = list(dict.fromkeys(r.step for r in rows))
    assert steps.index("order1 › blur") < steps.index("final › video")   # degradation order, not alphabetical
    assert "<polyline" in charts.sparkline_svg(walk.series)


# ---------------------------------------------------------------- a real output

@pytest.fixture(scope="module")
def report_output(sample_dir, tmp_path_factory, ray_session):
    base = tmp_path_factory.mktemp("report")
    inp = base / "in"
    inp.mkdir()
    weird = inp / 'car<phone> & "x".mp4'
    shutil.copy(sample_dir / "carphone_pristine.mp4", weird)
    weird.with_suffix(".txt").write_text(EVIL)
    shutil.copy(sample_dir / "bikes.mp4", inp / "bikes.mp4")
    shutil.copy(sample_dir / "bikes.txt", inp / "bikes.txt")
    bad = make_bad_inputs(inp)
    shutil.copy(bad["not_video"], inp / "<b>not<i>.mp4")
    out = base / "out"
    # the shipped demo (RealBasicVSR-style LR: per-frame walks) with two clips per source
    s = spec.load(REPO / "pipelines" / "demo.yaml", [f"input={inp}", f"output={out}", "split.max_clips_per_source=2"])
    runner.run(s, progress=False)
    # one reject row whose every text field is markup, as a writer could store it
    evil = Record(key=EVIL_REJECT["key"], meta={
        "source_uri": EVIL_REJECT["source_uri"], "source_id": "evil", "source_clips": 1, "start_frame": 0,
        "end_frame": 17, "caption": EVIL, "scores": {"sharpness": 5.0}, "fps": 24.0})
    evil.rejected("filter", EVIL_REJECT["reason"], EVIL_REJECT["detail"])
    writer.write_batch([evil], runner.output_settings(s))
    site = base / "site"
    res = build_site(str(out), site)
    return out, site, res


def test_report_rows_come_from_the_output(report_output):
    out, site, res = report_output
    view = data.open_output(str(out))
    kept, rejected = list(data.iter_kept(view)), list(data.iter_rejected(view))
    manifest_rows = list(reader.open_output(str(out)).manifest_rows(["key"]))
    assert [c.key for c in kept] == [r["key"] for r in manifest_rows]
    assert len(rejected) == len(pq.read_table(out / "rejects")) == res["rejects"]
    filtered = [c for c in rejected if c.stage == "filter"]
    assert filtered and all(c.scores for c in filtered)              # rejected clips keep their scores
    assert {r.name for r in view.rules} >= {"low_detail", "static", "shaky"}
    assert res["samples"] == len(kept) == len(list((site / "samples").glob("*.html")))
    # the histograms count kept and rejected clips: sharpness of every scored clip is in one bin
    index = (site / "index.html").read_text()
    svg = re.search(r'<figure class="chart" data-metric="sharpness">.*?(<svg.*?</svg>)', index).group(1)
    tips = re.findall(r"(\d+) kept, (\d+) rejected", svg)
    assert sum(int(k) for k, _ in tips) == sum("sharpness" in c.scores for c in kept)
    assert sum(int(r) for _, r in tips) == sum("sharpness" in c.scores for c in rejected)
    low_detail = next(r for r in view.rules if r.name == "low_detail")   # the profile's own threshold
    assert fmt.rule_label("low_detail", low_detail.min, None) in svg


def test_index_counts_and_stats_agree_with_manifests(report_output):
    out, site, _ = report_output
    rows = list(reader.open_output(str(out)).sample_rows())
    rejects = pq.read_table(out / "rejects").to_pylist()
    s = summary.build(str(out))
    assert s["counts"]["samples"] == len(rows)
    assert s["counts"]["rejects"] == len(rejects) >= 6
    assert s["counts"]["sources"] == len({r["source_id"] for r in rows} | {r["source_id"] for r in rejects})
    assert s["rejects_by_reason"] == {k: sum(1 for r in rejects if r["reason"] == k) for k in
                                      {r["reason"] for r in rejects}}
    cli = subprocess.run([os.sys.executable, "-m", "datakit.cli", "stats", str(out), "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(cli.stdout)["counts"] == s["counts"]
    index = (site / "index.html").read_text()
    assert re.search(rf'<b>{len(rows)}</b><span>samples kept</span>', index)
    assert re.search(rf'<b>{len(rejects)}</b><span>rejects</span>', index)


def test_inspect_cli_rejects_what_is_not_an_output(tmp_path):
    r = subprocess.run([os.sys.executable, "-m", "datakit.cli", "inspect", str(tmp_path / "nope"), "--html",
                        str(tmp_path / "site")], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "not a datakit output" in r.stderr and "Traceback" not in r.stderr


def test_inspect_profile_counts_rules_like_build_and_previews_spans(report_output, tmp_path):
    """`inspect OUT --profile P` before any build: P's thresholds on the histograms, per-rule counts that
    `build --profile P` agrees with (it is run), and HR previews decoded from the source spans."""
    from datakit import curation
    from datakit.scoring.profiles import Rule

    out, _, _ = report_output
    rows = list(reader.open_output(str(out)).index_rows(["key", "scores"]))
    sharp = sorted(r["scores"]["sharpness"] for r in rows if r["scores"] and r["scores"]["sharpness"] is not None)
    cut = round((sharp[len(sharp) // 2 - 1] + sharp[len(sharp) // 2]) / 2, 3)   # keeps about half
    rules = [{"name": "soft", "metric": "sharpness", "min": cut},
             {"name": "glare", "metric": "bright_fraction", "max": 0.25},
             {"name": "restless", "metric": "motion", "max": 3.5}]
    tree = {"name": "half", "score": {"metrics": ["sharpness", "exposure", "motion"]}, "rules": rules}
    prof = tmp_path / "half.yaml"
    prof.write_text(json.dumps(tree))
    site = tmp_path / "site"
    cli = subprocess.run([os.sys.executable, "-m", "datakit.cli", "inspect", str(out), "--profile", str(prof),
                          "--html", str(site), "--samples", "2"], capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stderr[-2000:]
    # the counts, recomputed here from the index rows and the rules alone
    fails = [[r["name"] for r in rules if Rule.model_validate(r).check(
        {k: v for k, v in (row["scores"] or {}).items() if v is not None})] for row in rows]
    kept = sum(not f for f in fails)
    assert 0 < kept < len(rows)
    assert f"profile half keeps {kept} of {len(rows)} indexed clips" in cli.stdout
    index = (site / "index.html").read_text()
    assert re.search(rf'data-kept="{kept}" data-clips="{len(rows)}"', index)
    for r in rules:
        n = sum(r["name"] in f for f in fails)
        assert re.search(rf'<tr data-rule="{r["name"]}">.*?<td class="num failing">{n}</td>', index), r["name"]
    # P's thresholds are drawn on the histograms of their metrics
    for r in rules:
        svg = re.search(rf'<figure class="chart" data-metric="{r["metric"]}">.*?(<svg.*?</svg>)', index).group(1)
        assert fmt.rule_label(r["name"], r.get("min"), r.get("max")) in svg
    # previews: two kept and two turned-down clips, HR frames decoded from their source spans
    cards = re.findall(r'<div class="card preview" data-key="([^"]*)" data-verdict="(\w+)">'
                       r'(?:<img src="(media/[^"]+/strip\.webp)"|<div class="nopic">)', index)
    assert sorted(v for _, v, _ in cards) == ["kept", "kept", "rejected", "rejected"]
    for key, _, rel in cards:
        if html.unescape(key) == EVIL_REJECT["key"]:      # its source is no video: the card says so
            assert not rel
            continue
        img = Image.open(site / rel)
        assert img.format == "WEBP" and img.width > 2 * img.height and np.asarray(img).std() > 5

    # build with P keeps exactly the clips inspect counted (the same profile code plans it)
    built = tmp_path / "built"
    s = spec.load(REPO / "pipelines" / "demo.yaml", [f"output={built}", "split.max_clips_per_source=2",
                                                      "synthetic.profile=bicubic"])
    res = curation.build(s, str(out), str(prof), progress=False)
    assert res.sources == kept
    assert res.samples_written + sum(1 for x in reader.open_output(str(built)).reject_rows(["stage"])
                                     if x["stage"] != "filter") == kept

    # without --profile a run output is the ordinary report (it needs --html); a missing profile is one line
    bad = subprocess.run([os.sys.executable, "-m", "datakit.cli", "inspect", str(out), "--profile", "no_such"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "no_such" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    bad = subprocess.run([os.sys.executable, "-m", "datakit.cli", "inspect", str(out)],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--html" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr


# ---------------------------------------------------------------- in a browser

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium (Debian's; never downloaded) with a fresh profile, or a skip saying why not."""
    exe = os.environ.get("DATAKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).is_file():
        pytest.skip(f"no Chromium at {exe}: install Debian's (apt-get install -y chromium) or set DATAKIT_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (it drives the system Chromium)")
    pw = sync_playwright().start()
    try:
        ctx = pw.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-profile")),
                                                    executable_path=exe, headless=True, args=CHROMIUM_ARGS,
                                                    viewport={"width": 1280, "height": 900})
    except Exception as exc:  # noqa: BLE001 - any launch failure means no browser here
        pw.stop()
        pytest.skip(f"Chromium at {exe} does not start: {str(exc).strip().splitlines()[0]}")
    yield ctx
    ctx.close()
    pw.stop()


class Watch:
    """Console errors, page errors and failed requests of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))


def _shot(locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=np.int16)


def _rows(page) -> list[dict]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('#clips tbody tr')).map(tr => ({
        key: tr.dataset.key, hidden: tr.hidden, reason: tr.dataset.reason,
        s: Object.fromEntries(Array.from(tr.cells).map((td, i) => [
            document.querySelector('#clips thead tr').cells[i].dataset.col, td.dataset.v]))}))""")


def _num(v):
    return None if v in (None, "") else float(v)


def test_every_page_loads_cleanly_and_shows_untrusted_text_as_text(browser, report_output):
    _, site, _ = report_output
    pages = [site / "index.html", site / "rejects.html", *sorted((site / "samples").glob("*.html"))]
    page = browser.new_page()
    watch = Watch(page)
    for path in pages:
        page.goto(path.as_uri(), wait_until="load")
        page.evaluate("() => Promise.all(Array.from(document.images).map(i => {"
                      "i.loading = 'eager'; return i.decode().catch(() => null); }))")   # lazy ones too
        broken = page.evaluate("() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                               ".map(i => i.src)")
        assert broken == [], (path.name, broken)
        if path.parent.name == "samples":
            page.wait_for_function("() => Array.from(document.querySelectorAll('.panes canvas'))"
                                   ".every(c => c.dataset.loaded === '1')")
        assert page.evaluate("() => window.__pwned === undefined"), path.name
        assert page.evaluate(f"() => document.querySelectorAll({INJECTED!r}).length") == 0, path.name
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L"), np.float32)
        assert shot.std() > 10, f"{path.name} looks blank"
    assert watch.errors == []

    # the untrusted caption: shown verbatim as text, on its page, in the table and on its card
    sample = next(p for p in pages[2:] if "car&lt;phone" in p.read_text())
    page.goto(sample.as_uri())
    assert page.inner_text("p.caption") == EVIL
    assert page.evaluate("() => document.querySelectorAll('p.caption *').length") == 0
    assert 'car<phone> & "x".mp4' in page.inner_text("body")
    page.goto((site / "index.html").as_uri())
    assert EVIL in page.eval_on_selector_all("#clips td.capcell", "els => els.map(e => e.textContent)")
    assert page.evaluate("() => document.querySelectorAll('td.capcell *:not(.clamp), .card .cap *').length") == 0
    # the injected reject: key, source, reason and detail are text everywhere they appear
    assert EVIL_REJECT["reason"] in page.eval_on_selector_all("select[data-filter=reason] option",
                                                              "els => els.map(e => e.textContent)")
    assert EVIL_REJECT["reason"] in page.inner_text("table.reasons")
    page.select_option("select[data-filter=reason]", EVIL_REJECT["reason"])
    visible = [r for r in _rows(page) if not r["hidden"]]
    assert [r["key"] for r in visible] == [EVIL_REJECT["key"]]
    page.goto((site / "rejects.html").as_uri())
    body = page.inner_text("body")
    for text in (EVIL_REJECT["reason"], EVIL_REJECT["detail"], "<b>not<i>.mp4"):
        assert text in body, text
    assert page.evaluate(f"() => document.querySelectorAll({INJECTED!r}).length") == 0
    assert page.evaluate("() => window.__pwned === undefined")
    assert watch.errors == []
    page.close()


def test_table_sorts_filters_and_remembers(browser, report_output):
    _, site, _ = report_output
    page = browser.new_page()
    watch = Watch(page)
    page.goto((site / "index.html").as_uri())
    before = [r["key"] for r in _rows(page)]
    n = len(before)
    assert page.inner_text("#shown") == f"{n} of {n} shown"

    # sorting changes the order: ascending by sharpness (rows without a value last), then descending
    page.click("th[data-col='s:sharpness'] button.sort")
    rows = _rows(page)
    vals = [_num(r["s"]["s:sharpness"]) for r in rows]
    have = [v for v in vals if v is not None]
    assert have == sorted(have) and vals[:len(have)] == have and [r["key"] for r in rows] != before
    page.click("th[data-col='s:sharpness'] button.sort")
    vals = [_num(r["s"]["s:sharpness"]) for r in _rows(page)]
    assert [v for v in vals if v is not None] == sorted(have, reverse=True)
    assert page.get_attribute("th[data-col='s:sharpness']", "aria-sort") == "descending"
    page.click("th[data-col='source'] button.sort")
    src = [r["s"]["source"].lower() for r in _rows(page)]
    assert src == sorted(src)

    # filters hide rows: by verdict, by a score expression, by text; cards follow the table
    page.select_option("select[data-filter=verdict]", "rejected")
    rows = _rows(page)
    assert all(r["hidden"] == (r["reason"] == "") for r in rows) and any(r["hidden"] for r in rows)
    hidden_cards = page.evaluate("() => Array.from(document.querySelectorAll('#cards .card'))"
                                 ".filter(c => !c.hidden).map(c => c.dataset.key)")
    assert sorted(hidden_cards) == sorted(r["key"] for r in rows if not r["hidden"])
    page.click("#clear")
    page.fill("input.score-filter[data-col='s:sharpness']", ">100")
    rows = _rows(page)
    for r in rows:
        v = _num(r["s"]["s:sharpness"])
        assert r["hidden"] == (v is None or not v > 100), r
    assert 0 < sum(not r["hidden"] for r in rows) < n
    page.fill("input.score-filter[data-col='s:sharpness']", "lots")           # not understood: no filter
    assert page.get_attribute("input.score-filter[data-col='s:sharpness']", "class").split().count("bad") == 1
    assert not any(r["hidden"] for r in _rows(page))
    page.fill("input.score-filter[data-col='s:sharpness']", "")
    page.fill("input[data-filter=q]", "bikes")
    assert all(r["hidden"] != ("bikes" in r["s"]["source"]) for r in _rows(page))

    # the state lives in the URL: reloading it restores sort and filters
    page.fill("input[data-filter=q]", "")
    page.fill("input.score-filter[data-col='s:motion']", "0..1000")
    order = [(r["key"], r["hidden"]) for r in _rows(page)]
    url = page.url
    assert "sort=source" in url and "f.s%3Amotion=0..1000" in url
    page.goto("about:blank")
    page.goto(url)
    assert [(r["key"], r["hidden"]) for r in _rows(page)] == order

    # a histogram bar filters the table to its bin; a reason link filters by reason
    page.goto((site / "index.html").as_uri())
    page.click("figure.chart[data-metric='sharpness'] g.bin:has(rect.kept)")
    expr = page.input_value("input.score-filter[data-col='s:sharpness']")
    lo, hi = map(float, expr.split(".."))
    vis = [_num(r["s"]["s:sharpness"]) for r in _rows(page) if not r["hidden"]]
    assert vis and all(lo <= v <= hi for v in vis)
    page.click("table.reasons a.filter-link >> nth=0")
    reason = page.input_value("select[data-filter=reason]")
    assert reason and all(r["hidden"] == (r["reason"] != reason) for r in _rows(page))
    assert watch.errors == []
    page.close()


def test_sample_player_steps_frames_and_slider_moves_the_split(browser, report_output):
    _, site, _ = report_output
    page = browser.new_page()
    watch = Watch(page)
    # prev/next follow the order the index was left in
    page.goto((site / "index.html").as_uri())
    page.select_option("select[data-filter=verdict]", "kept")
    page.click("th[data-col='s:sharpness'] button.sort")
    page.click("th[data-col='s:sharpness'] button.sort")
    order = [r["key"] for r in _rows(page) if not r["hidden"]]
    page.click(f"#clips tr[data-key='{order[0]}'] a.key")
    page.wait_for_selector(".panes canvas[data-loaded='1']")
    assert page.get_attribute("header.sample", "data-key") == order[0]
    assert page.get_attribute("nav.pager a.prev", "href") is None
    assert page.inner_text("nav.pager .pos").startswith(f"1 of {len(order)}")
    page.click("nav.pager a.next")
    assert page.get_attribute("header.sample", "data-key") == order[1]
    page.wait_for_function("() => Array.from(document.querySelectorAll('.panes canvas'))"
                           ".every(c => c.dataset.loaded === '1')")

    # frame stepping changes what every pane shows, and the counter
    hr, lr = page.locator("canvas[data-stream=hr]"), page.locator("canvas[data-stream=lr]")
    first_hr, first_lr, counter = _shot(hr), _shot(lr), page.inner_text(".counter")
    assert counter.startswith("frame 1 of ")
    page.click("button[data-act=next]")
    assert page.inner_text(".counter").startswith("frame 2 of ")
    assert np.abs(_shot(hr) - first_hr).mean() > 0.5 and np.abs(_shot(lr) - first_lr).mean() > 0.5
    page.keyboard.press("ArrowLeft")
    assert page.inner_text(".counter") == counter
    assert np.abs(_shot(hr) - first_hr).max() == 0
    page.click("button[data-act=last]")
    n = int(page.get_attribute(".controls", "data-frames"))
    assert page.get_attribute(".player", "data-frame") == str(n - 1)
    page.click("button[data-act=first]")
    page.click("button[data-act=play]")                                   # playing advances by itself
    page.wait_for_function("() => document.querySelector('.player').dataset.frame !== '0'")
    page.click("button[data-act=play]")
    assert page.inner_text("button[data-act=play]") == "▶ play"

    # the slider moves the HR | LR split: only the part between the two positions changes
    cmp, slider = page.locator("canvas.cmp"), page.locator("input.cmp-slider")
    slider.fill("10")
    a = _shot(cmp)
    slider.fill("90")
    b = _shot(cmp)
    w = a.shape[1]
    diff = np.abs(a - b).mean(axis=(0, 2))
    assert diff[int(0.15 * w):int(0.85 * w)].mean() > 1.0                 # LR replaced by HR there
    assert diff[:int(0.08 * w)].max() == 0 and diff[int(0.92 * w):].max() == 0
    # left of the split the comparison shows the HR pane's picture, right of it the LR's
    left, right = b[:, : int(0.8 * w)], a[:, int(0.2 * w):]
    hr_img = np.asarray(Image.fromarray(_shot(hr).astype(np.uint8)).resize((w, a.shape[0]), Image.NEAREST), np.int16)
    lr_img = np.asarray(Image.fromarray(_shot(lr).astype(np.uint8)).resize((w, a.shape[0]), Image.NEAREST), np.int16)
    assert np.abs(left - hr_img[:, : int(0.8 * w)]).mean() < np.abs(left - lr_img[:, : int(0.8 * w)]).mean()
    assert np.abs(right - lr_img[:, int(0.2 * w):]).mean() < np.abs(right - hr_img[:, int(0.2 * w):]).mean()

    # parameters: a readable table with per-frame walks as sparklines, numbers formatted
    assert page.locator("table.params svg.spark").count() > 0
    assert "order1 › blur" in page.inner_text("table.params")
    assert not re.search(r"\d\.\d{6,}", page.inner_text("table.params"))   # no raw 1.2345678 floats
    assert watch.errors == []
    page.close()


def test_references_join_the_player_in_step(browser, tmp_path):
    """An edit/mi2v sample: reference video, mask and ID crops are panes beside HR and LR."""
    hr = pattern_frames(9, 48, 64)
    lr = hr[:, ::4, ::4].copy()
    ref = pattern_frames(9, 48, 64, seed=99)
    crop = Image.new("RGB", (20, 30), (200, 40, 40))
    buf = io.BytesIO()
    crop.save(buf, format="PNG")
    members = {"hr.mp4": media.encode(hr, 24), "lr.mp4": media.encode(lr, 24, lossless=True),
               "ref.mp4": media.encode(ref, 24), "mask.mp4": media.encode((hr > 128).astype(np.uint8) * 255, 24),
               "ref_00.png": buf.getvalue()}
    row = data.ClipRow(key="a" * 32, verdict=data.KEPT, stage="", reason="", detail="", task="edit",
                       source_uri="/x/y.mp4", start_frame=0, end_frame=9, caption="c", scores={},
                       doc={"fps": 24.0, "hr": {"frames": 9}}, shard="s-000000")
    site = sitemod.Site(tmp_path / "site")
    m = sitemod.sample_media(site, row, members, sitemod.ReportOptions())
    assert [s.name for s in m.streams] == ["hr", "lr", "ref", "mask", "ref_00"]
    assert (m.display_width, m.display_height) == (64, 48) and m.get("ref_00").still
    # the LR sprite is lossless: its cells are the stored LR frames, exactly
    sp = m.get("lr")
    grid = np.asarray(Image.open(site.dir / sp.src).convert("RGB"))
    r, q = divmod(5, sp.cols)
    assert np.array_equal(grid[r * sp.height:(r + 1) * sp.height, q * sp.width:(q + 1) * sp.width],
                          media.decode(members["lr.mp4"])[5])
    path = site.put("samples/one.html", pages.sample_page(row, m, [], "t", None, None, (1, 1)))
    page = browser.new_page()
    watch = Watch(page)
    page.goto((site.dir / path).as_uri())
    page.wait_for_function("() => Array.from(document.querySelectorAll('.panes canvas'))"
                           ".every(c => c.dataset.loaded === '1')")
    assert page.locator(".panes canvas").count() == 5
    before = {n: _shot(page.locator(f"canvas[data-stream={n}]")) for n in ("ref", "ref_00")}
    page.click("button[data-act=next]")
    page.click("button[data-act=next]")
    assert np.abs(_shot(page.locator("canvas[data-stream=ref]")) - before["ref"]).mean() > 0.5
    assert np.abs(_shot(page.locator("canvas[data-stream=ref_00]")) - before["ref_00"]).max() == 0
    assert watch.errors == []
    page.close()
