"""``datakit inspect``: a self-contained static HTML report of an output root.

Pages: ``index.html`` (counters, rejects by reason, histograms with thresholds, sample
grid), ``samples/KEY.html`` (HR | LR | references, frame strips, zoomed crops, caption,
scores, every parameter), ``rejects.html`` (a gallery per reason). Media are WebP files
under ``media/``; links are relative, so the site works from disk or any static server.
Every caption, file name and metadata value is escaped.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

import numpy as np
import yaml
from PIL import Image

from .. import fsio, media, summary
from ..shards import _read_parquet, manifest_uris, read_manifest, reject_part_uris
from . import charts, previews
from .where import compile_where

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1,h2,h3{font-weight:600} a{color:#0a58ca}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;
vertical-align:top} th{background:#f0f0f0}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #ddd;padding:8px;width:260px}
.card img{max-width:100%;display:block}.cap{font-size:12px;color:#555;overflow-wrap:anywhere}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.row figure{margin:0}
figcaption{font-size:12px;color:#555} pre{background:#fff;border:1px solid #ddd;padding:.5em;overflow:auto;
max-height:28em;white-space:pre-wrap;overflow-wrap:anywhere}
.hist .bar{fill:#5b8def}.hist .axis{stroke:#888}.hist .thr{stroke:#d33;stroke-width:2;stroke-dasharray:4 2}
.hist .thrlab{fill:#d33;font-size:10px}.hist .lab{fill:#555;font-size:10px}.hist .t{font-size:12px;fill:#222}
.missing{width:160px;height:90px;display:flex;align-items:center;justify-content:center;background:#eee;
color:#777;font-size:12px;text-align:center}
"""


@dataclass
class ReportOptions:
    samples: int = 50
    task: str | None = None
    where: str | None = None
    rejects_per_reason: int = 12
    preview_width: int = 480
    preview_frames: int = 48


def e(v) -> str:
    """Escape any value for HTML text or attributes."""
    return escape("" if v is None else str(v), quote=True)


def _page(title: str, body: str, root: str = "") -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="{root}style.css"></head><body>{body}</body></html>')


def _table(rows: list[tuple], head: tuple | None = None) -> str:
    h = "<tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>" if head else ""
    return "<table>" + h + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>"


def _img(src: str, alt: str, cls: str = "") -> str:
    return f'<img src="{quote(src)}" alt="{e(alt)}"{f" class={cls!r}" if cls else ""} loading="lazy">'


# ---------------------------------------------------------------- data

def thresholds(config: dict | None, repo_root: Path | None = None) -> dict[str, dict]:
    """Metric -> {"min": x, "max": y} from the filter stage(s) of a run's config.

    A filter stage may carry its rules inline (``rules``) or name a profile YAML
    (``profile``) whose ``rules`` are read; rules are a list of ``{metric, min, max}``
    or a mapping ``metric: {min, max}``.
    """
    out: dict[str, dict] = {}
    for st in (config or {}).get("stages", []):
        if st.get("stage") != "filter":
            continue
        rules = st.get("rules")
        prof = st.get("profile")
        if rules is None and isinstance(prof, str):
            for cand in (Path(prof), (repo_root or Path.cwd()) / prof, (repo_root or Path.cwd()) / "filters" / f"{prof}.yaml"):
                if cand.is_file():
                    rules = (yaml.safe_load(cand.read_text()) or {}).get("rules")
                    break
        if isinstance(rules, dict):
            rules = [{"metric": k, **(v or {})} for k, v in rules.items()]
        for r in rules or []:
            if isinstance(r, dict) and r.get("metric"):
                out[str(r["metric"])] = {k: r[k] for k in ("min", "max") if r.get(k) is not None}
    return out


def iter_samples(root: str, opts: ReportOptions) -> Iterator[tuple[dict, dict[str, bytes]]]:
    """(manifest row, members) of the selected samples, reading each tar once."""
    keep: Callable[[dict], bool] = compile_where(opts.where) if opts.where else (lambda row: True)
    n = 0
    for man in manifest_uris(root):
        rows = [r for r in read_manifest(man) if (opts.task is None or r.get("task") == opts.task) and keep(r)]
        if not rows:
            continue
        wanted = {r["key"] for r in rows[: opts.samples - n]}
        members: dict[str, dict[str, bytes]] = {k: {} for k in wanted}
        with tarfile.open(fileobj=io.BytesIO(fsio.read_bytes(man[: -len(".parquet")] + ".tar"))) as tf:
            for ti in tf:
                key, _, name = ti.name.partition(".")
                if key in wanted and ti.isfile():
                    members[key][name] = tf.extractfile(ti).read()
        for r in rows:
            if r["key"] in wanted:
                yield r, members[r["key"]]
                n += 1
        if n >= opts.samples:
            return


# ---------------------------------------------------------------- writing

class Site:
    def __init__(self, out_dir: Path):
        self.dir = out_dir
        (out_dir / "samples").mkdir(parents=True, exist_ok=True)
        (out_dir / "media").mkdir(exist_ok=True)
        (out_dir / "style.css").write_text(CSS)

    def put(self, rel: str, data: bytes) -> str:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return rel


def _sample_media(site: Site, row: dict, members: dict[str, bytes], opts: ReportOptions) -> dict[str, str]:
    """Write a sample's previews; returns name -> path relative to the site root."""
    key, fps = row["key"], float(row.get("fps") or 24)
    out: dict[str, str] = {}
    hr = media.decode(members["hr.mp4"]) if "hr.mp4" in members else None
    lr = media.decode(members["lr.mp4"]) if "lr.mp4" in members else None
    if hr is not None:
        hr_v = previews.fit(hr, opts.preview_width)
        hr_s, step = previews.subsample(hr_v, opts.preview_frames)
        out["hr"] = site.put(f"media/{key}/hr.webp", previews.animated_webp(hr_s, fps / step))
        out["thumb"] = site.put(f"media/{key}/thumb.webp", previews.still_webp(previews.fit(hr[:1], 240)[0]))
        hr_small = previews.fit(hr, 160)
        out["hr_strip"] = site.put(f"media/{key}/hr_strip.webp", previews.still_webp(previews.strip(hr_small)))
    if lr is not None:
        h, w = (hr_v.shape[1], hr_v.shape[2]) if hr is not None else (lr.shape[1], lr.shape[2])
        lr_v = previews.upscale_nearest(lr, w, h)
        lr_s, step = previews.subsample(lr_v, opts.preview_frames)
        out["lr"] = site.put(f"media/{key}/lr.webp", previews.animated_webp(lr_s, fps / step))
        sh, sw = (hr_small.shape[1], hr_small.shape[2]) if hr is not None else (lr.shape[1], lr.shape[2])
        out["lr_strip"] = site.put(f"media/{key}/lr_strip.webp",
                                   previews.still_webp(previews.strip(previews.upscale_nearest(lr, sw, sh))))
    if hr is not None and lr is not None:
        mid = hr.shape[0] // 2
        box = previews.centre_crop_box(hr.shape[2], hr.shape[1])
        lr_up = previews.upscale_nearest(lr[mid:mid + 1], hr.shape[2], hr.shape[1])[0]
        scale = max(1, min(4, 256 // max(1, box[2] - box[0])))
        out["zoom_hr"] = site.put(f"media/{key}/zoom_hr.webp", previews.still_webp(previews.zoom(hr[mid], box, scale)))
        out["zoom_lr"] = site.put(f"media/{key}/zoom_lr.webp", previews.still_webp(previews.zoom(lr_up, box, scale)))
    for name, data in sorted(members.items()):
        stem = name.split(".")[0]
        if name.endswith(".png") or name.endswith(".jpg"):
            img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            out[stem] = site.put(f"media/{key}/{stem}.webp", previews.still_webp(previews.fit(img[None], 320)[0]))
        elif name.endswith(".mp4") and stem not in ("hr", "lr"):
            frames = previews.fit(media.decode(data), opts.preview_width)
            frames, step = previews.subsample(frames, opts.preview_frames)
            out[stem] = site.put(f"media/{key}/{stem}.webp", previews.animated_webp(frames, fps / step))
    return out


def _sample_page(row: dict, paths: dict[str, str]) -> str:
    key = row["key"]
    up = "../"
    fig = lambda name, label: (f"<figure>{_img(up + paths[name], label)}<figcaption>{e(label)}</figcaption></figure>"  # noqa: E731
                               if name in paths else "")
    hr, lr = row.get("hr") or {}, row.get("lr") or {}
    refs = [n for n in paths if n.startswith("ref") or n == "mask"]
    body = [f'<p><a href="../index.html">← index</a></p><h1>sample {e(key)}</h1>',
            _table([("task", row.get("task")), ("source", row.get("source_uri")),
                    ("frames", f"[{row.get('start_frame')}, {row.get('end_frame')}) at {row.get('fps')} fps "
                               f"(from {float(row.get('start_time') or 0):.2f} s)"),
                    ("HR", f"{hr.get('width')}×{hr.get('height')}, {hr.get('frames')} frames"),
                    ("LR", f"{lr.get('width')}×{lr.get('height')}, {lr.get('frames')} frames"),
                    ("shard", row.get("shard"))]),
            "<h2>Caption</h2>", f'<p class="caption">{e(row.get("caption")) or "<i>(no caption)</i>"}</p>',
            "<h2>HR | LR (upscaled to the HR display size)</h2>",
            f'<div class="row">{fig("hr", "HR")}{fig("lr", "LR")}{"".join(fig(n, n) for n in refs)}</div>',
            "<h2>Frame strips</h2>", f'<div class="row">{fig("hr_strip", "HR frames")}</div>',
            f'<div class="row">{fig("lr_strip", "LR frames")}</div>',
            "<h2>Zoomed centre crop (middle frame)</h2>",
            f'<div class="row">{fig("zoom_hr", "HR crop")}{fig("zoom_lr", "LR crop")}</div>']
    scores = row.get("scores") or {}
    body.append("<h2>Scores</h2>" + (_table(sorted(scores.items()), ("metric", "value")) if scores
                                      else "<p>no scores recorded</p>"))
    body.append("<h2>Degradations</h2>")
    for d in row.get("degradations") or []:
        body.append(f"<h3>{e(d.get('stage'))}: {e(d.get('profile'))} (seed {e(d.get('seed'))})</h3>"
                    f"<pre>{e(json.dumps(d.get('params'), indent=2, sort_keys=True))}</pre>")
    for section in ("sdedit", "refs"):
        if row.get(section):
            body.append(f"<h2>{e(section)}</h2><pre>{e(json.dumps(row[section], indent=2, sort_keys=True))}</pre>")
    body.append("<h2>Source</h2>" + _table(sorted((row.get("source") or {}).items()), ("field", "value")))
    body.append("<h2>Timings (s)</h2>" + _table(sorted((row.get("timings") or {}).items()), ("stage", "seconds")))
    return _page(f"sample {key}", "".join(body), root=up)


def _reject_thumb(site: Site, rej: dict) -> str | None:
    """A first-frame thumbnail of a rejected clip or source, if the source still decodes."""
    try:
        meta = json.loads(rej.get("json") or "{}")
        start = float(meta.get("start_time") or 0.0)
        frame = media.read_span(rej["source_uri"], start, 1, float(meta.get("fps") or 25.0))
        return site.put(f"media/rejects/{rej['key']}.webp", previews.still_webp(previews.fit(frame, 240)[0]))
    except Exception:  # noqa: BLE001 - unreadable sources are the common case here
        return None


def _rejects_page(site: Site, root: str, opts: ReportOptions) -> tuple[str, dict[str, int]]:
    tables = [_read_parquet(u) for u in reject_part_uris(root)]
    rows = [r for t in tables for r in t.to_pylist()]
    by_reason: dict[str, list[dict]] = {}
    for r in rows:
        by_reason.setdefault(r["reason"], []).append(r)
    body = ['<p><a href="index.html">← index</a></p><h1>Rejected clips and sources</h1>']
    for reason, items in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        body.append(f'<h2 id="{e(reason)}">{e(reason)} ({len(items)})</h2><div class="grid">')
        for r in items[: opts.rejects_per_reason]:
            thumb = _reject_thumb(site, r)
            pic = _img(thumb, r["source_uri"]) if thumb else '<div class="missing">no preview<br>(source unreadable)</div>'
            span = "" if r["key"] == r["source_id"] else f" frames {r['start_frame']}–{r['end_frame']}"
            body.append(f'<div class="card">{pic}<div class="cap"><b>{e(r["source_uri"].rsplit("/", 1)[-1])}</b>'
                        f'{e(span)}<br>stage {e(r["stage"])}: {e(r["detail"])}</div></div>')
        if len(items) > opts.rejects_per_reason:
            body.append(f"<p>… and {len(items) - opts.rejects_per_reason} more (see rejects.parquet)</p>")
        body.append("</div>")
    if not rows:
        body.append("<p>No rejects.</p>")
    return _page("rejects", "".join(body)), {k: len(v) for k, v in by_reason.items()}


def build_site(root: str, out_dir: str | Path, opts: ReportOptions | None = None,
               on_sample: Callable[[str], None] | None = None) -> dict:
    """Write the report; returns counts of what it wrote."""
    opts = opts or ReportOptions()
    root = fsio.normalize(root)
    site = Site(Path(out_dir))
    summ = summary.build(root)
    cards, all_rows = [], []
    for row, members in iter_samples(root, opts):
        paths = _sample_media(site, row, members, opts)
        site.put(f"samples/{row['key']}.html", _sample_page(row, paths).encode())
        thumb = _img(paths["thumb"], row["key"]) if "thumb" in paths else ""
        cards.append(f'<div class="card"><a href="samples/{e(row["key"])}.html">{thumb}{e(row["key"][:12])}</a>'
                     f'<div class="cap">{e(row.get("caption"))}</div></div>')
        if on_sample:
            on_sample(row["key"])
    for man in manifest_uris(root):
        all_rows += read_manifest(man)
    rejects_html, by_reason = _rejects_page(site, root, opts)
    site.put("rejects.html", rejects_html.encode())

    thr = thresholds(summ.get("config"))
    values: dict[str, list[float]] = {}
    for r in all_rows:
        for k, v in (r.get("scores") or {}).items():
            if isinstance(v, (int, float)):
                values.setdefault(k, []).append(float(v))
    for k in thr:
        values.setdefault(k, [])
    hists = [charts.histogram_svg(v, k, thr.get(k, {}).get("min"), thr.get(k, {}).get("max"))
             for k, v in sorted(values.items())]
    hists += [charts.histogram_svg([(r.get("source") or {}).get(f) for r in all_rows], f"source.{f}")
              for f in ("duration_s", "height", "fps")]
    c = summ["counts"]
    body = [f"<h1>datakit report: {e(summ.get('pipeline'))}</h1>",
            _table([("output", root), ("task", summ.get("task")), ("config hash", summ.get("config_hash")),
                    ("sources", c["sources"]), ("clips", c["clips"]), ("samples", c["samples"]),
                    ("shards", c["shards"]), ("rejects", c["rejects"])]),
            "<h2>Stages</h2>",
            _table([(n, s["in"], s["rejected"], s["out"], s["unit"]) for n, s in summ["stages"].items()],
                   ("stage", "in", "rejected", "out", "unit")),
            "<h2>Rejects by reason</h2>",
            ("<ul>" + "".join(f'<li><a href="rejects.html#{e(k)}">{e(k)}</a>: {n}</li>' for k, n in
                              sorted(by_reason.items(), key=lambda kv: -kv[1])) + "</ul>") if by_reason
            else "<p>none</p>",
            "<h2>Distributions</h2>", '<div class="row">' + "".join(hists) + "</div>",
            f"<h2>Samples ({len(cards)} shown"
            + (f", filter: {e(opts.where)}" if opts.where else "") + (f", task {e(opts.task)}" if opts.task else "")
            + ")</h2>", '<div class="grid">' + "".join(cards) + "</div>"]
    site.put("index.html", _page(f"datakit report {summ.get('pipeline')}", "".join(body)).encode())
    return {"samples": len(cards), "rejects": sum(by_reason.values()), "dir": str(site.dir)}
