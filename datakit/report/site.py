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


# ---------------------------------------------------------------- a clip index through a profile

@dataclass
class ProfileReport:
    """What ``inspect INDEX --profile P`` found (and wrote, with ``--html``)."""

    root: str
    pipeline: str | None
    profile: str
    clips: int
    kept: int
    rules: list[data.RuleCount]
    cards: int = 0
    dir: str | None = None


def span_strip(site: Site, c: ClipRow, frames: int = 4, width: int = 200) -> tuple[str | None, str | None]:
    """(strip of ``frames`` HR frames, thumbnail) of a clip decoded from its source span, at the HR's
    size; (None, None) when the source no longer decodes."""
    d = c.doc
    hr = d.get("hr") or {}
    size = (hr["width"], hr["height"]) if hr.get("width") and hr.get("height") else None
    n = d.get("num_frames") or ((c.end_frame or 0) - (c.start_frame or 0)) or 1
    try:
        v = media.read_span(c.source_uri, float(d.get("start_time") or 0.0), int(n), float(d.get("fps") or 24.0),
                            size)
    except Exception:  # noqa: BLE001 - a moved or damaged source: the card says so
        return None, None
    v = previews.fit(v, width)
    key = safe_name(c.key)
    return (site.put(f"media/{key}/strip.webp", previews.still_webp(previews.strip(v, frames))),
            site.put(f"media/{key}/thumb.webp", previews.still_webp(v[len(v) // 2])))


def _round_robin(groups: dict[str, list], n: int) -> list:
    """Up to ``n`` items taking one from each group in turn (every reason gets shown)."""
    out, lists = [], [list(g) for g in groups.values()]
    while len(out) < n and any(lists):
        for g in lists:
            if g and len(out) < n:
                out.append(g.pop(0))
    return out


def inspect_index(root: str, profile: str | None = None, out_dir: str | Path | None = None,
                  opts: ReportOptions | None = None, cards: int = 6,
                  on_clip: Callable[[str], None] | None = None) -> ProfileReport:
    """What ``profile`` keeps of the clip index at ``root``, per rule; with ``out_dir`` also the site:
    histograms with the profile's thresholds, previews of ``cards`` kept and ``cards`` turned-down
    clips (HR frames from the source spans) and a table of the clips."""
    opts = opts or ReportOptions()
    view = data.open_index_view(root, profile)
    tally = data.RuleTally(view.rules)
    wanted = _selector(opts)
    vals: tuple[dict[str, list[float]], dict[str, list[float]]] = ({}, {})
    rows: list[ClipRow] = []
    kept_pick: list[ClipRow] = []
    rejected_pick: dict[str, list[tuple[ClipRow, list[str]]]] = {}
    for c, failed in data.iter_indexed(view):
        tally.add(failed)
        if out_dir is None:
            continue
        into = vals[c.verdict == REJECTED]
        for m, v in c.scores.items():
            into.setdefault(m, []).append(v)
        src = c.doc.get("source") or {}
        for f in SOURCE_FIELDS:
            if isinstance(src.get(f), (int, float)):
                into.setdefault(f"source.{f}", []).append(float(src[f]))
        if len(rows) < opts.max_rejects:
            rows.append(c)
        if wanted(c):
            if c.verdict != REJECTED and len(kept_pick) < cards:
                kept_pick.append(c)
            elif c.verdict == REJECTED and len(rejected_pick.setdefault(c.reason, [])) < cards:
                rejected_pick[c.reason].append((c, failed))
        if on_clip:
            on_clip(c.key)
    pipeline = view.output.spec.get("name")
    rep = ProfileReport(view.root, pipeline, view.profile, tally.clips, tally.kept, tally.counts())
    if out_dir is None:
        return rep

    site = Site(Path(out_dir))
    thumbs: dict[str, str | None] = {}

    def card(c: ClipRow, failed: list[str]) -> pages.Card:
        strip, thumbs[c.key] = span_strip(site, c)
        return pages.Card(c, strip, failed)

    shown = ([card(c, []) for c in kept_pick],
             [card(c, f) for c, f in _round_robin(rejected_pick, cards)])
    report_id = hashlib.sha1(f"{view.root}\n{view.profile}".encode()).hexdigest()[:12]
    table_rows = [pages.TableRow(c, None, thumbs.get(c.key)) for c in rows]
    metrics = sorted({m for m in set(vals[0]) | set(vals[1]) if not m.startswith("source.")})
    note = (f"{len(rows)} of {tally.clips} clips (the histograms and the rule table count all of them); "
            f"previews of {len(shown[0])} kept and {len(shown[1])} turned-down clips")
    site.put("index.html", pages.profile_page(view.root, pipeline, view.profile, rep.rules, tally.clips, tally.kept,
                                              table_rows, _histograms(vals[0], vals[1], view.rules), view.rules,
                                              metrics, shown, report_id, note))
    rep.cards, rep.dir = len(shown[0]) + len(shown[1]), str(site.dir)
    return rep
