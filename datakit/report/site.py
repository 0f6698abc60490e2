"""``datakit inspect``: write the report of an output root as a self-contained static site.

``index.html`` (counters, stages, rejects by reason, verdict-coloured histograms with the
filter thresholds, and one sortable, filterable table / card view of the shown clips),
``samples/KEY.html`` (a synchronised HR | LR | references player with frame stepping and
an HR/LR comparison slider, scores against the rules, degradation parameters),
``rejects.html`` (a gallery per reason), ``assets/`` (one stylesheet, one script) and
``media/`` (WebP sprites and stills). Links are relative: open ``index.html`` from disk
or serve the folder; nothing is fetched from the network.

This module orders the work; the output is read by :mod:`.data`, pages are rendered by
:mod:`.pages`, charts by :mod:`.charts` and pictures by :mod:`.previews`.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .. import media
from . import assets, charts, data, pages, previews
from .data import REJECTED, ClipRow
from .fmt import safe_name
from .where import compile_where

SOURCE_FIELDS = ("duration_s", "height", "fps")
# LR (and mask) sprites are lossless up to this many pixels; above it a lossless sprite of
# noisy frames runs to tens of megabytes per sample, so they are WebP at this quality
LOSSLESS_MAX_PIXELS = 4_000_000
LOSSY_QUALITY = 95


@dataclass
class ReportOptions:
    samples: int = 50              # sample pages (kept samples matching task/where, in shard order)
    task: str | None = None
    where: str | None = None
    rejects_per_reason: int = 12   # reject previews per reason (each decodes its source)
    preview_width: int = 480       # sprites are at most this wide
    preview_frames: int = 81       # frames per sprite; longer clips show every n-th frame
    max_rejects: int = 5000        # reject rows in the table and gallery


class Site:
    def __init__(self, out_dir: Path):
        self.dir = out_dir
        for sub in ("samples", "media", "assets"):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
        (out_dir / "assets" / "report.css").write_text(assets.CSS, encoding="utf-8")
        (out_dir / "assets" / "report.js").write_text(assets.JS, encoding="utf-8")

    def put(self, rel: str, payload: bytes | str) -> str:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload.encode("utf-8") if isinstance(payload, str) else payload)
        return rel


def _selector(opts: ReportOptions) -> Callable[[ClipRow], bool]:
    keep = compile_where(opts.where) if opts.where else None

    def ok(c: ClipRow) -> bool:
        if opts.task and c.task != opts.task:
            return False
        if keep is None:
            return True
        return keep({**c.doc, "key": c.key, "task": c.task, "caption": c.caption, "stage": c.stage,
                     "reason": c.reason, "verdict": c.verdict})
    return ok


def _decode(members: dict[str, bytes], name: str) -> np.ndarray | None:
    if name not in members:
        return None
    try:
        return media.decode(members[name])
    except media.MediaError:
        return None


def sample_media(site: Site, c: ClipRow, members: dict[str, bytes], opts: ReportOptions) -> pages.SampleMedia:
    """Write a sample's sprites and stills; say what the player shows."""
    key = safe_name(c.key)
    out = pages.SampleMedia()

    def movie(name: str, frames: np.ndarray, label: str, lossless: bool) -> pages.Stream:
        v, step = previews.subsample(previews.fit(frames, opts.preview_width), opts.preview_frames)
        if lossless and v[..., 0].size > LOSSLESS_MAX_PIXELS:
            lossless, label = False, f"{label} (WebP q{LOSSY_QUALITY})"
        sp = previews.sprite(v, step, lossless=lossless, quality=LOSSY_QUALITY if name == "lr" else 88)
        s = pages.Stream(name, label, site.put(f"media/{key}/{name}.webp", sp.data), sp.width, sp.height,
                         sp.cols, sp.rows, sp.frames, sp.step)
        out.streams.append(s)
        return s

    hr, lr = _decode(members, "hr.mp4"), _decode(members, "lr.mp4")
    if hr is not None:
        s = movie("hr", hr, f"HR {hr.shape[2]}×{hr.shape[1]}", lossless=False)
        out.display_width, out.display_height = s.width, s.height
        out.thumb = site.put(f"media/{key}/thumb.webp", previews.still_webp(previews.fit(hr[:1], 320)[0]))
    if lr is not None:
        scale = f", drawn ×{hr.shape[2] / lr.shape[2]:.3g}" if hr is not None else ""
        s = movie("lr", lr, f"LR {lr.shape[2]}×{lr.shape[1]}{scale}", lossless=True)
        if hr is None:
            out.display_width, out.display_height = s.width, s.height
    for name in sorted(members, key=lambda n: ({"ref.mp4": 0, "mask.mp4": 1}.get(n, 2), n)):
        stem, _, ext = name.partition(".")
        if ext == "mp4" and stem not in ("hr", "lr"):
            frames = _decode(members, name)
            if frames is not None:
                movie(stem, frames, {"ref": "reference video", "mask": "object mask"}.get(stem, stem), stem == "mask")
        elif ext in ("png", "jpg", "jpeg", "webp"):
            try:
                img = np.asarray(Image.open(io.BytesIO(members[name])).convert("RGB"))
            except OSError:
                continue
            img = previews.fit(img[None], opts.preview_width)[0]
            label = f"ID crop {stem[4:]}" if stem.startswith("ref_") else stem
            out.streams.append(pages.Stream(stem, f"{label} {img.shape[1]}×{img.shape[0]}",
                                            site.put(f"media/{key}/{stem}.webp", previews.still_webp(img)),
                                            img.shape[1], img.shape[0], still=True))
    return out


def _reject_thumb(site: Site, c: ClipRow) -> str | None:
    """The first frame of a rejected clip (or source), if its source still decodes."""
    try:
        start = 0.0 if c.is_source else float(c.doc.get("start_time") or 0.0)
        frame = media.read_span(c.source_uri, start, 1, float(c.doc.get("fps") or 25.0))
        return site.put(f"media/rejects/{safe_name(c.key)}.webp", previews.still_webp(previews.fit(frame, 320)[0]))
    except Exception:  # noqa: BLE001 - an unreadable source is the usual reason for the reject itself
        return None


def _histograms(kept: dict[str, list[float]], rejected: dict[str, list[float]], rules) -> dict[str, str]:
    """metric -> SVG: the filter's metrics first (in rule order), then other scores, then source fields."""
    ruled = list(dict.fromkeys(r.metric for r in rules))
    names = ruled + sorted((set(kept) | set(rejected)) - set(ruled))
    out = {}
    for m in sorted(names, key=lambda n: (n.startswith("source."), names.index(n))):
        metric = "" if m.startswith("source.") else m
        out[m] = charts.histogram_svg(kept.get(m, []), rejected.get(m, []), pages.thresholds_of(m, rules),
                                      metric=metric)
    return out


def build_site(root: str, out_dir: str | Path, opts: ReportOptions | None = None,
               on_sample: Callable[[str], None] | None = None) -> dict:
    """Write the report; returns what it wrote (sample pages, rejects, the site's folder)."""
    opts = opts or ReportOptions()
    view = data.open_output(root)
    site = Site(Path(out_dir))
    wanted = _selector(opts)
    vals: tuple[dict[str, list[float]], dict[str, list[float]]] = ({}, {})

    def count(c: ClipRow) -> None:
        into = vals[c.verdict == REJECTED]
        for m, v in c.scores.items():
            into.setdefault(m, []).append(v)
        src = c.doc.get("source") if isinstance(c.doc.get("source"), dict) else {}
        for f in SOURCE_FIELDS:
            if isinstance(src.get(f), (int, float)):
                into.setdefault(f"source.{f}", []).append(float(src[f]))

    chosen: list[ClipRow] = []
    n_kept = n_match = 0
    for c in data.iter_kept(view):
        count(c)
        n_kept += 1
        if wanted(c):
            n_match += 1
            if len(chosen) < opts.samples:
                chosen.append(c)
    rejected: list[ClipRow] = []
    n_rejected = 0
    for c in data.iter_rejected(view):
        count(c)
        n_rejected += 1
        if wanted(c) and len(rejected) < opts.max_rejects:
            rejected.append(c)

    report_id = hashlib.sha1(f"{view.root}\n{view.summary.get('config_hash')}".encode()).hexdigest()[:12]
    hrefs = [f"samples/{safe_name(c.key)}.html" for c in chosen]
    rows: list[pages.TableRow] = []
    for i, (c, members) in enumerate(data.read_members(view, chosen)):
        m = sample_media(site, c, members, opts)
        site.put(hrefs[i], pages.sample_page(
            c, m, view.rules, report_id, prev_href=f"../{hrefs[i - 1]}" if i else None,
            next_href=f"../{hrefs[i + 1]}" if i + 1 < len(hrefs) else None, position=(i + 1, len(hrefs))))
        rows.append(pages.TableRow(c, hrefs[i], m.thumb))
        c.doc = {}                     # the page is written; keep only what the table needs
        if on_sample:
            on_sample(c.key)

    groups: dict[str, list[tuple[ClipRow, str | None]]] = {}
    for c in rejected:
        groups.setdefault(c.reason, []).append((c, None))
    groups = dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))
    for reason, items in groups.items():
        for j, (c, _) in enumerate(items):
            thumb = _reject_thumb(site, c) if j < opts.rejects_per_reason else None
            items[j] = (c, thumb)
            rows.append(pages.TableRow(c, f"rejects.html#r-{safe_name(c.key)}", thumb))
    site.put("rejects.html", pages.rejects_page(groups, view.rules, report_id, opts.rejects_per_reason))

    metrics = sorted({m for m in set(vals[0]) | set(vals[1]) if not m.startswith("source.")})
    selection = (f" matching {opts.where!r}" if opts.where else "") + (f" of task {opts.task}" if opts.task else "")
    note = (f"{len(chosen)} of {n_match} samples{selection} (--samples sets how many) and "
            f"{len(rejected)} of {n_rejected} rejects; the histograms count all {n_kept} samples and "
            f"{n_rejected} rejects")
    hists = _histograms(vals[0], vals[1], view.rules)
    site.put("index.html", pages.index_page(view.summary, view.root, rows, hists, view.rules, metrics,
                                            report_id, note))
    return {"samples": len(chosen), "rejects": n_rejected, "dir": str(site.dir)}
