"""The report's HTML pages, as text, from plain rows (no I/O here).

Every value that comes from an output (captions, keys, file names, source URIs, reasons,
details, metadata) goes through :func:`fmt.e`; nothing from an output becomes a URL
except keys, which :func:`fmt.safe_name` reduces to ``[A-Za-z0-9_-]``. Pages carry a
Content-Security-Policy that allows only the report's own script and stylesheet, so
even a missed escape could not run code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from ..scoring.profiles import Rule
from . import charts
from .data import KEPT, ClipRow
from .fmt import e, num, rule_label, safe_name, value
from .params import param_rows

ZOOMS = (1, 1.5, 2, 3, 4)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'none'")


@dataclass
class Stream:
    """One player pane: a sprite of frames (``cols`` x ``rows`` cells) or a still image."""

    name: str                 # hr, lr, ref, mask, ref_00 ...
    label: str                # what the pane's caption says
    src: str                  # path relative to the site root
    width: int                # one cell / the image, in pixels
    height: int
    cols: int = 1
    rows: int = 1
    frames: int = 1
    step: int = 1
    still: bool = False


@dataclass
class SampleMedia:
    streams: list[Stream] = field(default_factory=list)
    thumb: str | None = None
    display_width: int = 0    # the HR's width and height as the player shows them
    display_height: int = 0

    def get(self, name: str) -> Stream | None:
        return next((s for s in self.streams if s.name == name), None)


@dataclass
class TableRow:
    clip: ClipRow
    href: str | None          # its page (kept samples) or its card in the rejects gallery
    thumb: str | None


def page(title: str, body: str, kind: str, report_id: str, root: str = "") -> str:
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="referrer" content="no-referrer"><title>{e(title)}</title>'
            f'<link rel="stylesheet" href="{root}assets/report.css">'
            f'<script src="{root}assets/report.js" defer></script></head>'
            f'<body data-kind="{kind}" data-report="{e(report_id)}">{body}</body></html>')


def table(rows: list[tuple], head: tuple | None = None, cls: str = "") -> str:
    """A table of plain-text cells (every cell is escaped here)."""
    h = "<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr></thead>" if head else ""
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}">{h}<tbody>{body}</tbody></table>'


def failing(scores: dict[str, float], rules: list[Rule]) -> dict[str, list[str]]:
    """metric -> labels of the rules its value fails."""
    out: dict[str, list[str]] = {}
    for r in rules:
        v = scores.get(r.metric)
        if v is None:
            continue
        if (r.min is not None and v < r.min) or (r.max is not None and v > r.max):
            out.setdefault(r.metric, []).append(rule_label(r.name, r.min, r.max))
    return out


def thresholds_of(metric: str, rules: list[Rule]) -> list[charts.Threshold]:
    out = []
    for r in rules:
        if r.metric == metric:
            if r.min is not None:
                out.append(charts.Threshold(rule_label(r.name, r.min, None), r.min))
            if r.max is not None:
                out.append(charts.Threshold(rule_label(r.name, None, r.max), r.max))
    return out


def _span(c: ClipRow) -> str:
    if c.start_frame is None or c.end_frame is None:
        return "whole source"
    return f"{c.start_frame}–{c.end_frame}"


def _badge(c: ClipRow) -> str:
    if c.verdict == KEPT:
        return '<span class="badge kept">kept</span>'
    return f'<span class="badge rejected">rejected</span> <span class="badge reason">{e(c.reason)}</span>'


# ---------------------------------------------------------------- index

def _tiles(counts: dict) -> str:
    names = [("sources", "sources"), ("clips", "clips cut"), ("samples", "samples kept"),
             ("rejects", "rejects"), ("shards", "shards")]
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{e(num(counts.get(k, 0)))}</b><span>{e(label)}</span></div>' for k, label in names
    ) + "</div>"


def _stages(stages: dict) -> str:
    top = max([s["in"] for s in stages.values()] + [1])
    rows = []
    for name, s in stages.items():
        w = 120 * s["out"] / top if top else 0
        wr = 120 * s["rejected"] / top if top else 0
        bar = (f'<svg class="flow" width="124" height="10" role="img" aria-label="{e(s["out"])} out">'
               f'<rect class="kept" x="0" y="1" width="{w:.1f}" height="8"/>'
               f'<rect class="rejected" x="{w:.1f}" y="1" width="{wr:.1f}" height="8"/></svg>')
        link = (f'<a href="#stage={e(quote(name, safe=""))}" class="filter-link">{e(num(s["rejected"]))}</a>'
                if s["rejected"] else "0")
        rows.append(f'<tr><td>{e(name)}</td><td class="num">{e(num(s["in"]))}</td><td class="num">{link}</td>'
                    f'<td class="num">{e(num(s["out"]))}</td><td>{bar}</td><td class="dim">{e(s["unit"])}</td></tr>')
    return ('<table class="stages"><thead><tr><th>stage</th><th>in</th><th>rejected</th><th>out</th><th></th>'
            '<th>unit</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _reasons(by_stage: dict[str, dict[str, int]], rules: list[Rule]) -> str:
    label = {r.name: rule_label(r.metric, r.min, r.max) for r in rules}
    items = sorted(((n, st, reason) for st, d in by_stage.items() for reason, n in d.items()), key=lambda t: -t[0])
    if not items:
        return "<p class=\"dim\">No rejects.</p>"
    rows = "".join(f'<tr><td><a href="#reason={e(quote(reason, safe=""))}" class="filter-link">{e(reason)}</a></td>'
                   f'<td class="dim">{e(st)}</td><td class="num">{e(num(n))}</td>'
                   f'<td class="dim">{e(label.get(reason, ""))}</td></tr>' for n, st, reason in items)
    return ('<table class="reasons"><thead><tr><th>reason</th><th>stage</th><th>clips</th><th>rule</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>")


def _select(name: str, label: str, values: list[str]) -> str:
    opts = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)
    return (f'<label>{e(label)} <select data-filter="{e(name)}"><option value="">all</option>{opts}</select>'
            "</label>")


def _row_attrs(t: TableRow) -> str:
    c = t.clip
    text = " ".join([c.key, c.caption, c.source_uri, c.reason, c.detail]).lower()
    return (f'data-key="{e(c.key)}" data-verdict="{e(c.verdict)}" data-stage="{e(c.stage)}" '
            f'data-reason="{e(c.reason)}" data-task="{e(c.task)}" data-source="{e(c.source_name)}" '
            f'data-text="{e(text)}" data-page="{e(t.href or "") if c.verdict == KEPT else ""}"')


def _score_cell(metric: str, v: float | None, fails: dict[str, list[str]]) -> str:
    if v is None:
        return '<td class="num" data-v=""></td>'
    bad = fails.get(metric)
    cls = "num fail" if bad else "num"
    tip = f' title="{e("fails " + "; ".join(bad))}"' if bad else ""
    return f'<td class="{cls}" data-v="{v!r}"{tip}>{e(num(v))}</td>'


def clip_table(rows: list[TableRow], metrics: list[str], rules: list[Rule]) -> str:
    cols = [("thumb", "", "none"), ("key", "clip", "text"), ("verdict", "verdict", "text"),
            ("stage", "stage", "text"), ("reason", "reason", "text"), ("task", "task", "text"),
            ("source", "source", "text"), ("frames", "frames", "num"), ("caption", "caption", "text")]
    cols += [(f"s:{m}", m, "num") for m in metrics]
    head = "".join(f'<th data-col="{e(c)}" data-type="{t}"' + (' class="num"' if t == "num" else "") + ">"
                   + (f'<button type="button" class="sort" title="sort by {e(label)}">{e(label)}</button>'
                      if t != "none" else "") + "</th>" for c, label, t in cols)
    filt = "".join(
        (f'<th><input type="text" class="score-filter" data-col="{e(c)}" placeholder="e.g. &gt;100" '
         f'title="keep rows where {e(label)} is &gt;x, &gt;=x, &lt;x, &lt;=x, =x or a..b" '
         f'aria-label="filter {e(label)}" size="6"></th>') if c.startswith("s:") else "<th></th>"
        for c, label, t in cols)
    body = []
    for t in rows:
        c = t.clip
        fails = failing(c.scores, rules)
        thumb = (f'<img src="{e(t.thumb)}" alt="" loading="lazy" class="mini">' if t.thumb else "")
        key = (f'<a href="{e(t.href)}" class="key">{e(c.key[:12])}</a>' if t.href
               else f'<span class="key">{e(c.key[:12])}</span>')
        cells = [f"<td>{thumb}</td>", f'<td data-v="{e(c.key)}" title="{e(c.key)}">{key}</td>',
                 f'<td data-v="{e(c.verdict)}"><span class="badge {e(c.verdict)}">{e(c.verdict)}</span></td>',
                 f'<td data-v="{e(c.stage)}">{e(c.stage)}</td>', f'<td data-v="{e(c.reason)}">{e(c.reason)}</td>',
                 f'<td data-v="{e(c.task)}">{e(c.task)}</td>',
                 f'<td data-v="{e(c.source_name)}" title="{e(c.source_uri)}" class="src">{e(c.source_name)}</td>',
                 f'<td class="num" data-v="{"" if c.start_frame is None else c.start_frame}">{e(_span(c))}</td>',
                 f'<td data-v="{e(c.caption)}" class="capcell" title="{e(c.caption)}"><div class="clamp">{e(c.caption)}</div></td>']
        cells += [_score_cell(m, c.scores.get(m), fails) for m in metrics]
        body.append(f"<tr {_row_attrs(t)}>" + "".join(cells) + "</tr>")
    return (f'<div class="tablewrap"><table id="clips" class="clips"><thead><tr>{head}</tr>'
            f'<tr class="filters">{filt}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def _score_rows(scores: dict, names, fails) -> str:
    """Table rows of the scores in ``names`` (those present), failing ones marked."""
    return "".join(f'<tr{" class=fail" if m in fails else ""}><td>{e(m)}</td><td class="num">'
                   f'{e(num(scores[m]))}</td></tr>' for m in names if m in scores)


def clip_cards(rows: list[TableRow], metrics: list[str], rules: list[Rule]) -> str:
    out = []
    for t in rows:
        c = t.clip
        fails = failing(c.scores, rules)
        pic = (f'<img src="{e(t.thumb)}" alt="" loading="lazy">' if t.thumb
               else '<div class="nopic">no preview</div>')
        head = (f'<a href="{e(t.href)}">{pic}</a>' if t.href else pic)
        scores = _score_rows(c.scores, metrics, fails)
        title = (f'<a href="{e(t.href)}" class="key">{e(c.key[:12])}</a>' if t.href
                 else f'<span class="key">{e(c.key[:12])}</span>')
        out.append(f'<div class="card" {_row_attrs(t)}>{head}<div class="body"><div>{title} {_badge(c)}</div>'
                   f'<div class="src" title="{e(c.source_uri)}">{e(c.source_name)} · {e(_span(c))}</div>'
                   f'<div class="cap">{e(c.caption)}</div>'
                   + (f'<table class="mini-scores">{scores}</table>' if scores else "") + "</div></div>")
    return '<div id="cards" class="cards" hidden>' + "".join(out) + "</div>"


def _toolbar(rows: list[TableRow]) -> str:
    values = lambda attr: sorted({getattr(t.clip, attr) for t in rows if getattr(t.clip, attr)})  # noqa: E731
    return ('<div class="toolbar">'
            '<label>search <input type="search" data-filter="q" placeholder="key, caption, source, reason…">'
            "</label>"
            + _select("verdict", "verdict", values("verdict")) + _select("stage", "stage", values("stage"))
            + _select("reason", "reason", values("reason")) + _select("task", "task", values("task"))
            + _select("source", "source", values("source_name"))
            + '<button type="button" id="clear">clear filters</button>'
            '<span class="views"><button type="button" data-view="table" class="on">table</button>'
            '<button type="button" data-view="cards">cards</button></span>'
            '<span id="shown" class="dim" aria-live="polite"></span></div>')


def _distributions(hists: dict[str, str], kept: str = "kept", rejected: str = "rejected") -> str:
    figs = "".join(f'<figure class="chart" data-metric="{e(m)}"><figcaption>{e(m)}</figcaption>{svg}</figure>'
                   for m, svg in hists.items())
    return ('<section id="distributions"><h2>Distributions</h2><p class="legend">'
            f'<span class="sw kept"></span>{e(kept)} <span class="sw rejected"></span>{e(rejected)} '
            '<span class="sw thr"></span>filter threshold (keeps the side its label points to: ≥ min, ≤ max) '
            '<span class="dim">· click a bar to filter the clips</span></p>'
            f'<div class="charts">{figs or "<p class=dim>no scores recorded</p>"}</div></section>')


def index_page(summary: dict, root: str, rows: list[TableRow], hists: dict[str, str], rules: list[Rule],
               metrics: list[str], report_id: str, note: str) -> str:
    c = summary["counts"]
    toolbar = _toolbar(rows)
    meta = table([("output", root), ("pipeline", summary.get("pipeline")), ("task", summary.get("task")),
                  ("config hash", summary.get("config_hash")), ("format version", summary.get("format_version"))],
                 cls="kv")
    body = (f'<header class="top"><h1>datakit report · {e(summary.get("pipeline"))}</h1><nav>'
            '<a href="#overview">overview</a><a href="#distributions">distributions</a>'
            '<a href="#clips-section">clips</a><a href="rejects.html">rejects gallery</a></nav></header><main>'
            f'<section id="overview">{_tiles(c)}<div class="cols">'
            f'<div><h2>Stages</h2>{_stages(summary.get("stages") or {})}</div>'
            f'<div><h2>Rejects by reason</h2>{_reasons(summary.get("rejects_by_stage") or {}, rules)}</div>'
            f'<div><h2>Output</h2>{meta}</div></div></section>'
            f'{_distributions(hists)}'
            f'<section id="clips-section"><h2>Clips <span class="dim">{e(note)}</span></h2>{toolbar}'
            f"{clip_table(rows, metrics, rules)}{clip_cards(rows, metrics, rules)}</section></main>"
            '<footer class="dim">keys: <kbd>/</kbd> search · on a sample page <kbd>←</kbd> <kbd>→</kbd> frame, '
            "<kbd>space</kbd> play, <kbd>p</kbd> <kbd>n</kbd> previous / next clip</footer>")
    return page(f"datakit report {summary.get('pipeline') or ''}", body, "index", report_id)


# ---------------------------------------------------------------- a clip index through a profile

@dataclass
class Card:
    """A clip shown with a strip of its HR frames, decoded from its source span."""

    clip: ClipRow
    strip: str | None                 # the picture (path relative to the site), None if the source failed
    failed: list[str]                 # the profile's rules it fails


def rule_table(counts: list, clips: int, kept: int, profile: str) -> str:
    """The per-rule table: each rule's threshold, how many clips fail it, and what is left after it."""
    body = "".join(
        f'<tr data-rule="{e(r.name)}"><td><a href="#reason={e(quote(r.name, safe=""))}" class="filter-link">'
        f'{e(r.name)}</a></td><td class="thr">{e(r.threshold)}</td><td class="num failing">{e(num(r.failing))}</td>'
        f'<td class="num only">{e(num(r.only))}</td><td class="num left">{e(num(r.kept_so_far))}</td></tr>'
        for r in counts)
    return ('<table class="rules"><thead><tr><th>rule</th><th>threshold</th><th>clips failing it</th>'
            '<th>failing it alone</th><th>kept by it and the rules above</th></tr></thead>'
            f'<tbody>{body}</tbody><tfoot><tr class="total"><th colspan="4">profile {e(profile)} keeps</th>'
            f'<td class="num kept-total" data-kept="{kept}" data-clips="{clips}">{e(num(kept))} of {e(num(clips))}'
            "</td></tr></tfoot></table>")


def preview_cards(cards: list[Card], rules: list[Rule]) -> str:
    out = []
    for cd in cards:
        c = cd.clip
        fails = failing(c.scores, rules)
        pic = (f'<img src="{e(cd.strip)}" alt="HR frames of the clip" class="strip">' if cd.strip
               else '<div class="nopic">no preview<br>(the source no longer decodes)</div>')
        scores = _score_rows(c.scores, sorted(c.scores), fails)
        why = (f'<div>fails <b>{e(", ".join(cd.failed))}</b></div>' if cd.failed else "")
        out.append(f'<div class="card preview" data-key="{e(c.key)}" data-verdict="{e(c.verdict)}">{pic}'
                   f'<div class="body"><div><span class="key" title="{e(c.key)}">{e(c.key[:12])}</span> {_badge(c)}'
                   f'</div><div class="src" title="{e(c.source_uri)}">{e(c.source_name)} · {e(_span(c))}</div>'
                   f'{why}<div class="cap">{e(c.caption)}</div>'
                   + (f'<table class="mini-scores">{scores}</table>' if scores else "") + "</div></div>")
    return "".join(out)


def profile_page(root: str, pipeline: str | None, profile: str, counts: list, clips: int, kept: int,
                 rows: list[TableRow], hists: dict[str, str], rules: list[Rule], metrics: list[str],
                 cards: tuple[list[Card], list[Card]], report_id: str, note: str) -> str:
    """``inspect INDEX --profile P``: what P would keep of a clip index, before any build."""
    tiles = '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{e(num(n))}</b><span>{e(label)}</span></div>'
        for n, label in ((clips, "clips indexed"), (kept, f"kept by {profile}"), (clips - kept, "turned down"))
    ) + "</div>"
    meta = table([("index", root), ("pipeline", pipeline), ("profile", profile)], cls="kv")
    kept_cards, rejected_cards = cards
    body = (f'<header class="top"><h1>datakit inspect · {e(pipeline)} · profile {e(profile)}</h1><nav>'
            '<a href="#overview">overview</a><a href="#distributions">distributions</a>'
            '<a href="#previews">previews</a><a href="#clips-section">clips</a></nav></header><main>'
            f'<section id="overview">{tiles}<div class="cols">'
            f'<div><h2>Rules</h2>{rule_table(counts, clips, kept, profile)}</div>'
            f'<div><h2>Index</h2>{meta}<p class="dim">Nothing is built yet: <code>datakit build SPEC --index '
            f'{e(root)} --profile {e(profile)} --output OUT</code> makes the samples of the kept clips.</p></div>'
            "</div></section>"
            f'{_distributions(hists, f"kept by {profile}", "turned down")}'
            '<section id="previews"><h2>Previews <span class="dim">HR frames decoded from the source spans</span>'
            f'</h2><h3>kept by {e(profile)} · {len(kept_cards)}</h3><div class="cards" id="kept-cards">'
            f'{preview_cards(kept_cards, rules)}</div><h3>turned down · {len(rejected_cards)}</h3>'
            f'<div class="cards" id="rejected-cards">{preview_cards(rejected_cards, rules)}</div></section>'
            f'<section id="clips-section"><h2>Clips <span class="dim">{e(note)}</span></h2>{_toolbar(rows)}'
            f"{clip_table(rows, metrics, rules)}{clip_cards(rows, metrics, rules)}</section></main>")
    return page(f"datakit inspect {pipeline or ''} · {profile}", body, "index", report_id)


# ---------------------------------------------------------------- sample page

def _player(m: SampleMedia, fps: float, start_frame: int | None, total: int | None) -> str:
    moving = [s for s in m.streams if not s.still]
    if not moving:
        return '<p class="dim">no video members to show</p>'
    n = max(s.frames for s in moving)
    step = moving[0].step
    panes = []
    for s in m.streams:
        attrs = (f'data-src="../{e(s.src)}" data-cols="{s.cols}" data-rows="{s.rows}" data-n="{s.frames}" '
                 f'data-w="{s.width}" data-h="{s.height}" data-stream="{e(s.name)}"')
        panes.append(f'<figure class="pane"><canvas class="{"still" if s.still else "frames"}" {attrs} '
                     f'aria-label="{e(s.label)}"></canvas><figcaption>{e(s.label)}</figcaption></figure>')
    hr, lr = m.get("hr"), m.get("lr")
    compare = ""
    if hr and lr:
        compare = ('<h2>Compare HR and the upscaled LR</h2><div class="compare">'
                   '<canvas class="cmp" data-a="hr" data-b="lr" aria-label="HR left of the line, LR right"></canvas>'
                   '<span class="cmp-lab left">HR</span><span class="cmp-lab right">LR</span></div>'
                   '<label class="cmp-ctl">HR | LR split <input type="range" class="cmp-slider" min="0" '
                   'max="100" value="50" step="1"></label>')
    zoom_opts = "".join(f'<option value="{z:g}">{z:g}×</option>' for z in ZOOMS)
    controls = (
        f'<div class="controls" data-frames="{n}" data-fps="{fps:g}" data-step="{step}" '
        f'data-start="{start_frame or 0}" data-total="{total or n * step}">'
        '<button type="button" data-act="first" title="first frame">first</button>'
        '<button type="button" data-act="prev" title="previous frame (←)">◀ frame</button>'
        '<button type="button" data-act="play" class="play" title="play / pause (space)">▶ play</button>'
        '<button type="button" data-act="next" title="next frame (→)">frame ▶</button>'
        '<button type="button" data-act="last" title="last frame">last</button>'
        f'<input type="range" class="scrub" min="0" max="{n - 1}" value="0" aria-label="frame">'
        '<span class="counter" aria-live="polite"></span>'
        '<label>speed <select class="speed"><option value="0.25">¼×</option><option value="0.5">½×</option>'
        '<option value="1" selected>1×</option><option value="2">2×</option></select></label>'
        f'<label>zoom <select class="zoom">{zoom_opts}</select></label>'
        '<label>upscaling <select class="smooth"><option value="0">nearest (pixels)</option>'
        '<option value="1">smooth</option></select></label></div>')
    note = (f'<p class="dim">Every frame of the clip is shown{"" if step == 1 else f" (every {step}th)"}; '
            "LR is drawn at the HR's size. Panes stay in step.</p>")
    # the largest zoom at which all panes fit one row of a laptop screen and stay under 400 px tall
    row = sum(m.display_width if s.name in ("hr", "lr") else s.width * m.display_height / max(1, s.height)
              for s in m.streams) + 12 * len(m.streams)
    zoom = max([z for z in ZOOMS if row * z <= 1320 and m.display_height * z <= 400] or [1])
    return (f'<div class="player" data-dw="{m.display_width}" data-dh="{m.display_height}" data-zoom="{zoom}">'
            f'{controls}'
            f'<div class="panes">{"".join(panes)}</div>{note}{compare}</div>')


def _scores_table(scores: dict[str, float], rules: list[Rule]) -> str:
    if not scores:
        return '<p class="dim">no scores recorded</p>'
    fails = failing(scores, rules)
    by_metric: dict[str, list[str]] = {}
    for r in rules:
        by_metric.setdefault(r.metric, []).append(rule_label(r.name, r.min, r.max))
    rows = "".join(f'<tr class="{"fail" if m in fails else ""}"><td>{e(m)}</td><td class="num">{e(num(v))}</td>'
                   f'<td class="dim">{e("; ".join(by_metric.get(m, [])))}</td>'
                   f'<td>{e("fails " + "; ".join(fails[m])) if m in fails else ("ok" if m in by_metric else "")}</td>'
                   "</tr>" for m, v in sorted(scores.items()))
    return ('<table class="scores"><thead><tr><th>metric</th><th>value</th><th>filter rules</th><th>verdict</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>")


def params_table(params: dict) -> str:
    rows = param_rows(params)
    if not rows:
        return '<p class="dim">none</p>'
    out, last = [], None
    for r in rows:
        step = "" if r.step == last else r.step
        last = r.step
        spark = charts.sparkline_svg(r.series) if r.series else ""
        out.append(f'<tr class="{"" if r.applied else "off"}{" first" if step else ""}"><th>{e(step)}</th>'
                   f'<td>{e(r.name)}</td><td class="val">{e(r.text)}</td><td>{spark}</td></tr>')
    return ('<table class="params"><thead><tr><th>step</th><th>parameter</th><th>value</th><th>per frame</th>'
            f'</tr></thead><tbody>{"".join(out)}</tbody></table>')


def _degradations(degs: list) -> str:
    if not degs:
        return '<p class="dim">none recorded</p>'
    out = []
    for d in degs:
        if not isinstance(d, dict):
            continue
        over = d.get("overrides") or {}
        out.append(f'<h3>{e(d.get("stage"))} · profile {e(d.get("profile"))} '
                   f'<span class="dim">seed {e(d.get("seed"))}'
                   + (f" · overrides {e(value(over))}" if over else "") + "</span></h3>"
                   + params_table(d.get("params") or {}))
    return "".join(out)


def sample_page(c: ClipRow, m: SampleMedia, rules: list[Rule], report_id: str, prev_href: str | None,
                next_href: str | None, position: tuple[int, int]) -> str:
    d = c.doc
    hr, lr = d.get("hr") or {}, d.get("lr") or {}
    nav = ('<nav class="pager"><a href="../index.html#clips-section" class="up">← all clips</a>'
           + (f'<a href="{e(prev_href)}" class="prev" rel="prev">‹ previous</a>' if prev_href
              else '<a class="prev" rel="prev">‹ previous</a>')
           + f'<span class="pos dim">{position[0]} of {position[1]}</span>'
           + (f'<a href="{e(next_href)}" class="next" rel="next">next ›</a>' if next_href
              else '<a class="next" rel="next">next ›</a>') + "</nav>")
    info = table([("source", c.source_uri),
                  ("frames", f"{_span(c)} of the {num(d.get('fps'))} fps timeline, from "
                             f"{num(float(d.get('start_time') or 0))} s"),
                  ("HR", f"{hr.get('width')}×{hr.get('height')}, {hr.get('frames')} frames, {hr.get('codec')} "
                         f"crf {hr.get('crf')}"),
                  ("LR", f"{lr.get('width')}×{lr.get('height')}, {lr.get('frames')} frames, {lr.get('codec')}"
                         + (" (lossless)" if lr.get("lossless") else "")),
                  ("caption source", d.get("caption_source")), ("shard", c.shard), ("key", c.key)], cls="kv")
    extra = "".join(f'<h2>{e(sec)}</h2>{params_table(d[sec])}' for sec in ("sdedit", "refs", "filter", "scoring")
                    if isinstance(d.get(sec), dict) and d.get(sec))
    src = d.get("source") or {}
    timings = d.get("timings") or {}
    body = (f'{nav}<header class="sample" data-key="{e(c.key)}"><h1>clip <code>{e(c.key)}</code> {_badge(c)}</h1>'
            f'<p class="caption">{e(c.caption)}</p></header><main>'
            f'<section><h2>HR | LR{" | references" if len(m.streams) > 2 else ""}</h2>'
            f'{_player(m, float(d.get("fps") or 24), c.start_frame, hr.get("frames"))}</section>'
            f'<section class="cols"><div><h2>Scores</h2>{_scores_table(c.scores, rules)}</div>'
            f'<div><h2>Clip</h2>{info}</div></section>'
            f'<section><h2>Degradations</h2>{_degradations(d.get("degradations") or [])}</section>'
            f'<section>{extra}</section>'
            f'<section class="cols"><div><h2>Source</h2>{table([(k, value(v)) for k, v in sorted(src.items())], cls="kv")}'
            f'</div><div><h2>Time per stage</h2>'
            f'{table([(k, num(v) + " s") for k, v in timings.items()], cls="kv")}</div></section>'
            '<section><details><summary>sample json</summary>'
            f'<pre>{e(json.dumps({k: v for k, v in d.items() if k != "members"}, indent=2, sort_keys=True, default=str))}'
            "</pre></details></section></main>")
    return page(f"clip {c.key}", body, "sample", report_id, root="../")


# ---------------------------------------------------------------- rejects gallery

def rejects_page(groups: dict[str, list[tuple[ClipRow, str | None]]], rules: list[Rule], report_id: str,
                 shown_per_reason: int) -> str:
    label = {r.name: rule_label(r.metric, r.min, r.max) for r in rules}
    out = ['<h1>Rejected clips and sources</h1>']
    if not groups:
        out.append('<p class="dim">No rejects.</p>')
    toc = "".join(f'<li><a href="#reason-{e(safe_name(r))}">{e(r)}</a> ({len(items)})</li>'
                  for r, items in groups.items())
    if toc:
        out.append(f"<ul class=\"toc\">{toc}</ul>")
    for reason, items in groups.items():
        rule = f' <span class="dim">({e(label[reason])})</span>' if reason in label else ""
        out.append(f'<h2 id="reason-{e(safe_name(reason))}">{e(reason)} · {len(items)}{rule}</h2><div class="cards">')
        for c, thumb in items:
            pic = (f'<img src="{e(thumb)}" alt="" loading="lazy">' if thumb
                   else '<div class="nopic">no preview<br>(source unreadable or not shown)</div>')
            fails = failing(c.scores, rules)
            scores = "".join(f'<tr{" class=fail" if m in fails else ""}><td>{e(m)}</td>'
                             f'<td class="num">{e(num(v))}</td></tr>' for m, v in sorted(c.scores.items()))
            out.append(f'<div class="card" id="r-{e(safe_name(c.key))}">{pic}<div class="body">'
                       f'<div class="src" title="{e(c.source_uri)}"><b>{e(c.source_name)}</b> · {e(_span(c))}</div>'
                       f'<div>stage <b>{e(c.stage)}</b>: <span class="detail">{e(c.detail)}</span></div>'
                       f'<div class="cap">{e(c.caption)}</div>'
                       + (f'<table class="mini-scores">{scores}</table>' if scores else "") + "</div></div>")
        out.append("</div>")
        if len(items) > shown_per_reason:
            out.append(f'<p class="dim">previews for the first {shown_per_reason}; every row is in rejects.parquet</p>')
    return page("rejects", f'<nav class="pager"><a href="index.html" class="up">← report</a></nav>'
                f"<main>{''.join(out)}</main>", "rejects", report_id)
