"""The report's stylesheet and script, written beside the pages as ``assets/``.

Plain CSS and vanilla JavaScript: no framework, no network, works from ``file://``.
The script never builds markup from data: it reorders and hides the rows and cards the
pages already hold, reads ``data-`` attributes, and draws frames on canvases.
"""

CSS = r"""
:root{--fg:#1d2330;--dim:#6b7280;--line:#e3e6eb;--bg:#f6f7f9;--card:#fff;--accent:#2f5fd0;
--kept:#3b82c4;--rejected:#e0793a;--thr:#c62828;--fail:#b42318}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
main{padding:0 24px 32px}main>h1{margin-top:16px}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:20px;margin:0;font-weight:650}h2{font-size:16px;margin:22px 0 8px;font-weight:650}
h3{font-size:14px;margin:16px 0 6px;font-weight:600}
code,kbd{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
kbd{border:1px solid var(--line);border-bottom-width:2px;border-radius:3px;padding:0 4px;background:#fff}
.dim{color:var(--dim)}
header.top{display:flex;align-items:center;gap:24px;padding:14px 24px;background:#1f2937;color:#fff;
position:sticky;top:0;z-index:5}
header.top nav a{color:#cbd5e1;margin-right:16px}header.top nav a:hover{color:#fff}
footer{padding:12px 24px 24px;font-size:12px}
section{margin-top:8px}
.cols{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}.cols>div{min-width:280px}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin-top:18px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:120px}
.tile b{display:block;font-size:22px;font-weight:650}.tile span{color:var(--dim);font-size:12px}
table{border-collapse:collapse;background:var(--card)}
td,th{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{font-weight:600;background:#f0f2f5}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv td:first-child{color:var(--dim);white-space:nowrap}table.kv td{overflow-wrap:anywhere;max-width:560px}
svg.flow .kept,.sw.kept{fill:var(--kept);background:var(--kept)}
svg.flow .rejected,.sw.rejected{fill:var(--rejected);background:var(--rejected)}
.legend{font-size:13px}.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 4px 0 10px;
vertical-align:-1px}.sw.thr{background:none;border-left:2px dashed var(--thr);width:6px;border-radius:0}
.charts{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0}
figure.chart{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 8px 2px}
figure.chart figcaption{font-weight:600;font-size:13px;margin:0 0 2px 4px}
.hist .kept{fill:var(--kept)}.hist .rejected{fill:var(--rejected)}
.hist .hit{fill:transparent}.hist .bin{cursor:pointer}.hist .bin[data-metric=""]{cursor:default}.hist .bin:hover .hit{fill:#2f5fd014}
.hist .axis{stroke:#9aa1ab}.hist .grid{stroke:#eceef1}.hist .lab{fill:var(--dim);font-size:10px}
.hist .thr{stroke:var(--thr);stroke-width:1.5;stroke-dasharray:4 3}
.hist .thrlab{fill:var(--thr);font-size:10px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px;
stroke-linejoin:round}
.hist .empty{fill:var(--dim);font-size:12px}
.toolbar{display:flex;flex-wrap:wrap;gap:10px 14px;align-items:center;margin:6px 0 10px;font-size:13px}
.toolbar select,.toolbar input,.toolbar button,.controls select,.controls button{font:inherit;padding:3px 6px;
border:1px solid #c9ced6;border-radius:5px;background:#fff}
.toolbar select{max-width:220px}.toolbar button{cursor:pointer}.views button.on{background:var(--fg);color:#fff;border-color:var(--fg)}
.views button{margin-left:-1px}
.tablewrap{overflow:auto;max-height:78vh;border:1px solid var(--line);border-radius:8px;background:var(--card)}
table.clips{font-size:13px;width:100%}
table.clips thead th{position:sticky;top:0;z-index:2;white-space:nowrap}
table.clips thead tr.filters th{top:31px;background:#f7f8fa;padding:2px 6px}
table.clips td{white-space:nowrap}
table.clips td.capcell{white-space:normal;min-width:200px;max-width:300px}
.clamp{overflow:hidden;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical}
table.clips td.src{max-width:180px;overflow:hidden;text-overflow:ellipsis}
table.clips tbody tr:hover>td{background:#f3f6fd}
table.clips tr>:nth-child(1){position:sticky;left:0;z-index:1;background:var(--card);width:78px;min-width:78px;max-width:78px}
table.clips tr>:nth-child(2){position:sticky;left:78px;z-index:1;background:var(--card);box-shadow:inset -1px 0 0 var(--line)}
table.clips thead tr>:nth-child(1),table.clips thead tr>:nth-child(2){z-index:3;background:#f0f2f5}
table.clips thead tr.filters>:nth-child(1),table.clips thead tr.filters>:nth-child(2){background:#f7f8fa}
button.sort{all:unset;cursor:pointer}button.sort:focus-visible{outline:2px solid var(--accent)}
th[aria-sort=ascending] button.sort::after{content:" ▲";font-size:10px}
th[aria-sort=descending] button.sort::after{content:" ▼";font-size:10px}
input.score-filter{width:70px;font:12px ui-monospace,monospace;padding:2px 4px;border:1px solid #c9ced6;border-radius:4px}
input.bad{border-color:var(--fail);background:#fdecea}
img.mini{height:36px;max-width:64px;object-fit:cover;display:block;border-radius:3px}
td.fail,tr.fail td{color:var(--fail);font-weight:600}
.badge{display:inline-block;font-size:11px;padding:0 6px;border-radius:9px;background:#e5e7eb;font-weight:600;
vertical-align:1px}
.badge.kept{background:#dbeafe;color:#1e40af}.badge.rejected{background:#fde4d3;color:#9a3412}
.badge.reason{background:#f3f4f6;color:var(--fg);font-weight:500}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden}
.card[hidden]{display:none}
.card img{width:100%;display:block;background:#111;aspect-ratio:16/9;object-fit:contain}
#previews .cards{grid-template-columns:repeat(auto-fill,minmax(420px,1fr))}
.card img.strip{aspect-ratio:auto}
table.rules td.thr{font-family:var(--mono,monospace)}table.rules tfoot th{text-align:right}
.card .body{padding:8px 10px;font-size:12px}.card .src{color:var(--dim);overflow-wrap:anywhere}
.card .cap{margin:4px 0;overflow-wrap:anywhere}
.nopic{aspect-ratio:16/9;display:flex;align-items:center;justify-content:center;text-align:center;
background:#eceef1;color:var(--dim);font-size:12px}
table.mini-scores{width:100%;font-size:11px}table.mini-scores td{padding:1px 4px}
nav.pager{display:flex;gap:18px;align-items:center;padding:10px 24px;background:#1f2937}
nav.pager a{color:#dbe4f3}nav.pager a:not([href]){color:#6b7280;pointer-events:none}
nav.pager .pos{color:#9ca3af}
header.sample{padding:14px 24px 0}
p.caption{font-size:15px;max-width:960px;margin:8px 0 0;white-space:pre-wrap;overflow-wrap:anywhere}
.player{background:#111827;border-radius:10px;padding:10px 12px;color:#e5e7eb}
.player .dim{color:#9ca3af}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;font-size:13px;margin-bottom:10px}
.controls button{cursor:pointer;min-width:34px}.controls .play{min-width:76px}
.controls input.scrub{flex:1;min-width:160px}.counter{font-variant-numeric:tabular-nums;min-width:210px}
.panes{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.pane figcaption{font-size:12px;color:#cbd5e1;margin-top:3px}
canvas{display:block;background:#000}
.compare{position:relative;display:inline-block;margin-top:4px;cursor:ew-resize;touch-action:none}
.cmp-lab{position:absolute;top:6px;font-size:12px;font-weight:600;background:#000a;color:#fff;padding:1px 6px;
border-radius:4px;pointer-events:none}.cmp-lab.left{left:6px}.cmp-lab.right{right:6px}
.cmp-ctl{display:flex;gap:10px;align-items:center;font-size:13px;margin:6px 0}.cmp-ctl input{width:320px}
.player h2{color:#fff}
table.scores td:first-child{font-weight:500}
table.params{font-size:13px}table.params th{background:none;white-space:nowrap;color:var(--fg)}
table.params tr.first th,table.params tr.first td{border-top:2px solid var(--line)}
table.params td.val{font-variant-numeric:tabular-nums;white-space:nowrap}
table.params tr.off td,table.params tr.off th{color:var(--dim);font-style:italic}
svg.spark polyline{fill:none;stroke:var(--accent);stroke-width:1.4}svg.spark circle{fill:var(--accent)}
details pre{background:var(--card);border:1px solid var(--line);padding:8px;overflow:auto;max-height:32em;
white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}
ul.toc{columns:3;font-size:13px}
.detail{overflow-wrap:anywhere}
"""

JS = r"""
(function () {
  "use strict";
  var body = document.body;
  var ORDER_KEY = "datakit-report-order:" + (body.dataset.report || "");
  function store(k, v) { try { sessionStorage.setItem(k, v); } catch (err) { /* storage off */ } }
  function recall(k) { try { return sessionStorage.getItem(k); } catch (err) { return null; } }
  function typing(ev) {
    var t = ev.target;
    return t && (t.tagName === "INPUT" && t.type !== "range" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
  }

  // ------------------------------------------------------------ index: sort and filter
  var NUM = "(-?(?:\\d+\\.?\\d*|\\.\\d+)(?:e[-+]?\\d+)?)";
  var RANGE = new RegExp("^" + NUM + "\\s*\\.\\.\\s*" + NUM + "$", "i");
  var CMP = new RegExp("^(>=|<=|>|<|==|=)?\\s*" + NUM + "$", "i");
  function parseExpr(text) {            // null: no filter; undefined: not understood
    var t = (text || "").trim(), m;
    if (!t) { return null; }
    if ((m = t.match(RANGE))) {
      var a = Number(m[1]), b = Number(m[2]);
      return function (x) { return x >= a && x <= b; };
    }
    if ((m = t.match(CMP))) {
      var v = Number(m[2]);
      switch (m[1] || "=") {
        case ">": return function (x) { return x > v; };
        case ">=": return function (x) { return x >= v; };
        case "<": return function (x) { return x < v; };
        case "<=": return function (x) { return x <= v; };
        default: return function (x) { return x === v; };
      }
    }
    return undefined;
  }

  function initIndex() {
    var table = document.getElementById("clips");
    if (!table) { return; }
    var tbody = table.tBodies[0];
    var cardBox = document.getElementById("cards");
    var cards = cardBox ? Array.prototype.slice.call(cardBox.children) : [];
    var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var cols = heads.map(function (th) { return { col: th.dataset.col, type: th.dataset.type, th: th }; });
    var rows = Array.prototype.slice.call(tbody.rows).map(function (tr, i) {
      var v = {};
      cols.forEach(function (c, j) {
        var raw = tr.cells[j] && tr.cells[j].dataset.v;
        if (raw === undefined) { return; }
        v[c.col] = c.type === "num" ? (raw === "" ? null : Number(raw)) : raw.toLowerCase();
      });
      return { i: i, tr: tr, card: cards[i], v: v, d: tr.dataset };
    });
    var selects = Array.prototype.slice.call(document.querySelectorAll("[data-filter]"));
    var scoreInputs = Array.prototype.slice.call(table.querySelectorAll("input.score-filter"));
    var shown = document.getElementById("shown");
    var wrap = table.parentNode;
    var state = { sort: "", dir: 1, f: {}, s: {}, view: "table" };

    function compare(a, b, dir) {
      if (a === null || a === undefined) { return (b === null || b === undefined) ? 0 : 1; }
      if (b === null || b === undefined) { return -1; }
      return (a < b ? -1 : a > b ? 1 : 0) * dir;
    }

    function apply(scroll) {
      var tests = [];
      ["verdict", "stage", "reason", "task", "source"].forEach(function (k) {
        var want = state.f[k];
        if (want) { tests.push(function (r) { return r.d[k] === want; }); }
      });
      if (state.f.q) {
        var q = state.f.q.toLowerCase();
        tests.push(function (r) { return r.d.text.indexOf(q) >= 0; });
      }
      scoreInputs.forEach(function (inp) {
        var fn = parseExpr(state.s[inp.dataset.col]);
        inp.classList.toggle("bad", fn === undefined);
        if (fn) {
          var col = inp.dataset.col;
          tests.push(function (r) { return r.v[col] !== null && r.v[col] !== undefined && fn(r.v[col]); });
        }
      });
      var list = rows.slice();
      if (state.sort) {
        list.sort(function (a, b) { return compare(a.v[state.sort], b.v[state.sort], state.dir) || a.i - b.i; });
      }
      var visible = [];
      var ft = document.createDocumentFragment(), fc = document.createDocumentFragment();
      list.forEach(function (r) {
        var ok = tests.every(function (t) { return t(r); });
        if (ok) { visible.push(r); }
        r.tr.hidden = !ok;
        ft.appendChild(r.tr);
        if (r.card) { r.card.hidden = !ok; fc.appendChild(r.card); }
      });
      tbody.appendChild(ft);
      if (cardBox) { cardBox.appendChild(fc); }
      cols.forEach(function (c) {
        if (c.col === state.sort) { c.th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending"); }
        else { c.th.removeAttribute("aria-sort"); }
      });
      shown.textContent = visible.length + " of " + rows.length + " shown";
      store(ORDER_KEY, JSON.stringify(visible.filter(function (r) { return r.d.page; })
        .map(function (r) { return r.d.page; })));
      wrap.hidden = state.view !== "table";
      if (cardBox) { cardBox.hidden = state.view !== "cards"; }
      Array.prototype.forEach.call(document.querySelectorAll("[data-view]"), function (b) {
        b.classList.toggle("on", b.dataset.view === state.view);
      });
      writeHash();
      if (scroll) { document.getElementById("clips-section").scrollIntoView(); }
    }

    function writeHash() {
      var p = new URLSearchParams();
      if (state.sort) { p.set("sort", state.sort); if (state.dir < 0) { p.set("dir", "desc"); } }
      Object.keys(state.f).forEach(function (k) { if (state.f[k]) { p.set(k, state.f[k]); } });
      Object.keys(state.s).forEach(function (k) { if (state.s[k]) { p.set("f." + k, state.s[k]); } });
      if (state.view !== "table") { p.set("view", state.view); }
      var h = p.toString();
      if (h || location.hash.indexOf("=") >= 0) {
        history.replaceState(null, "", h ? "#" + h : location.pathname + location.search);
      }
    }

    function readHash() {
      var h = location.hash.slice(1);
      if (h.indexOf("=") < 0) { return false; }      // a plain anchor such as #overview
      var p = new URLSearchParams(h);
      state = { sort: p.get("sort") || "", dir: p.get("dir") === "desc" ? -1 : 1, f: {}, s: {},
                view: p.get("view") === "cards" ? "cards" : "table" };
      p.forEach(function (val, k) {
        if (k.indexOf("f.") === 0) { state.s[k.slice(2)] = val; }
        else if (["q", "verdict", "stage", "reason", "task", "source"].indexOf(k) >= 0) { state.f[k] = val; }
      });
      selects.forEach(function (el) { el.value = state.f[el.dataset.filter] || ""; });
      scoreInputs.forEach(function (el) { el.value = state.s[el.dataset.col] || ""; });
      return true;
    }

    selects.forEach(function (el) {
      el.addEventListener("input", function () { state.f[el.dataset.filter] = el.value; apply(false); });
    });
    scoreInputs.forEach(function (el) {
      el.addEventListener("input", function () { state.s[el.dataset.col] = el.value; apply(false); });
    });
    cols.forEach(function (c) {
      var b = c.th.querySelector("button.sort");
      if (!b) { return; }
      b.addEventListener("click", function () {
        if (state.sort === c.col) { state.dir = -state.dir; } else { state.sort = c.col; state.dir = 1; }
        apply(false);
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-view]"), function (b) {
      b.addEventListener("click", function () { state.view = b.dataset.view; apply(false); });
    });
    document.getElementById("clear").addEventListener("click", function () {
      state.f = {}; state.s = {};
      selects.forEach(function (el) { el.value = ""; });
      scoreInputs.forEach(function (el) { el.value = ""; });
      apply(false);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".hist .bin"), function (g) {
      g.addEventListener("click", function () {
        var col = "s:" + g.dataset.metric;
        var inp = scoreInputs.filter(function (x) { return x.dataset.col === col; })[0];
        if (!inp) { return; }
        state.s[col] = g.dataset.lo + ".." + g.dataset.hi;
        inp.value = state.s[col];
        apply(true);
      });
    });
    window.addEventListener("hashchange", function () { if (readHash()) { apply(true); } });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "/" && !typing(ev)) {
        ev.preventDefault();
        document.querySelector("[data-filter=q]").focus();
      }
    });
    readHash();
    apply(false);
  }

  // ------------------------------------------------------------ sample page: pager and player
  function initPager() {
    var prev = document.querySelector("nav.pager a.prev"), next = document.querySelector("nav.pager a.next");
    var pos = document.querySelector("nav.pager .pos");
    var here = "samples/" + decodeURIComponent(location.pathname.split("/").pop());
    var order = null;
    try { order = JSON.parse(recall(ORDER_KEY) || "null"); } catch (err) { order = null; }
    if (Array.isArray(order) && order.indexOf(here) >= 0 && prev && next) {
      var i = order.indexOf(here);
      var point = function (a, target) {
        if (target) { a.setAttribute("href", "../" + target); } else { a.removeAttribute("href"); }
      };
      point(prev, order[i - 1]);
      point(next, order[i + 1]);
      pos.textContent = (i + 1) + " of " + order.length + " (as sorted and filtered on the index)";
    }
    document.addEventListener("keydown", function (ev) {
      if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      var a = ev.key === "p" ? prev : ev.key === "n" ? next : null;
      if (a && a.getAttribute("href")) { location.href = a.href; }
    });
  }

  function initPlayer() {
    var player = document.querySelector(".player");
    if (!player) { return; }
    var ctl = player.querySelector(".controls");
    if (!ctl) { return; }
    var N = Number(ctl.dataset.frames), fps = Number(ctl.dataset.fps) || 24, step = Number(ctl.dataset.step) || 1;
    var total = Number(ctl.dataset.total) || N * step, start = Number(ctl.dataset.start) || 0;
    var dw = Number(player.dataset.dw), dh = Number(player.dataset.dh);
    var scrub = ctl.querySelector(".scrub"), counter = ctl.querySelector(".counter");
    var playBtn = ctl.querySelector(".play"), speedSel = ctl.querySelector(".speed");
    var zoomSel = ctl.querySelector(".zoom"), smoothSel = ctl.querySelector(".smooth");
    var cmp = player.querySelector("canvas.cmp"), slider = player.querySelector(".cmp-slider");
    var frame = 0, timer = null, split = 0.5;
    var zoom = Number(player.dataset.zoom) || 1;
    zoomSel.value = String(zoom);
    var streams = {};
    var panes = Array.prototype.slice.call(player.querySelectorAll(".panes canvas"));
    panes.forEach(function (cv) {
      var s = { cv: cv, cols: Number(cv.dataset.cols), n: Number(cv.dataset.n), w: Number(cv.dataset.w),
                h: Number(cv.dataset.h), still: cv.classList.contains("still"), ready: false, img: new Image() };
      streams[cv.dataset.stream] = s;
      s.img.onload = function () { s.ready = true; cv.dataset.loaded = "1"; draw(); };
      s.img.onerror = function () { cv.dataset.loaded = "error"; };
      s.img.src = cv.dataset.src;
    });

    function cell(s) {
      var j = Math.min(frame, s.n - 1);
      return [(j % s.cols) * s.w, Math.floor(j / s.cols) * s.h, s.w, s.h];
    }
    function sizeCanvas(cv, w, h) {
      var r = window.devicePixelRatio || 1;
      cv.style.width = Math.round(w) + "px";
      cv.style.height = Math.round(h) + "px";
      var pw = Math.round(w * r), ph = Math.round(h * r);
      if (cv.width !== pw || cv.height !== ph) { cv.width = pw; cv.height = ph; }
    }
    function paint(ctx, s, w, h) {
      if (!s || !s.ready) { return; }
      if (s.still) { ctx.drawImage(s.img, 0, 0, w, h); return; }
      var c = cell(s);
      ctx.drawImage(s.img, c[0], c[1], c[2], c[3], 0, 0, w, h);
    }
    function layout() {
      var H = dh * zoom;
      panes.forEach(function (cv) {
        var s = streams[cv.dataset.stream];
        var name = cv.dataset.stream;
        var W = (name === "hr" || name === "lr") ? dw * zoom : H * s.w / s.h;
        sizeCanvas(cv, W, H);
      });
      if (cmp) {
        var avail = Math.max(240, player.clientWidth - 28);
        var W = Math.min(avail, Math.max(dw * zoom, Math.min(960, dw * 4)));
        sizeCanvas(cmp, W, W * dh / dw);
      }
      draw();
    }
    function draw() {
      var smooth = smoothSel.value === "1";
      panes.forEach(function (cv) {
        var ctx = cv.getContext("2d");
        ctx.imageSmoothingEnabled = smooth;
        paint(ctx, streams[cv.dataset.stream], cv.width, cv.height);
      });
      if (cmp) {
        var ctx = cmp.getContext("2d"), W = cmp.width, H = cmp.height, x = Math.round(split * W);
        ctx.imageSmoothingEnabled = smooth;
        paint(ctx, streams[cmp.dataset.b], W, H);
        ctx.save();
        ctx.beginPath(); ctx.rect(0, 0, x, H); ctx.clip();
        paint(ctx, streams[cmp.dataset.a], W, H);
        ctx.restore();
        ctx.fillStyle = "#000"; ctx.fillRect(x - 2, 0, 4, H);
        ctx.fillStyle = "#fff"; ctx.fillRect(x - 1, 0, 2, H);
      }
      scrub.value = String(frame);
      var f = frame * step;
      counter.textContent = "frame " + (f + 1) + " of " + total + " · timeline frame " + (start + f) +
        " · " + (f / fps).toFixed(3) + " s";
      player.dataset.frame = String(frame);
    }
    function go(i) { frame = Math.max(0, Math.min(N - 1, i)); draw(); }
    function stop() {
      if (timer) { clearTimeout(timer); timer = null; }
      playBtn.textContent = "▶ play";
    }
    function tick() {
      go((frame + 1) % N);
      timer = setTimeout(tick, 1000 * step / (fps * Number(speedSel.value)));
    }
    function toggle() {
      if (timer) { stop(); return; }
      playBtn.textContent = "▮▮ pause";
      timer = setTimeout(tick, 1000 * step / (fps * Number(speedSel.value)));
    }
    ctl.addEventListener("click", function (ev) {
      var act = ev.target.dataset && ev.target.dataset.act;
      if (!act) { return; }
      if (act === "play") { toggle(); return; }
      stop();
      go({ first: 0, prev: frame - 1, next: frame + 1, last: N - 1 }[act]);
    });
    scrub.addEventListener("input", function () { stop(); go(Number(scrub.value)); });
    zoomSel.addEventListener("input", function () { zoom = Number(zoomSel.value); layout(); });
    smoothSel.addEventListener("input", draw);
    if (cmp && slider) {
      slider.addEventListener("input", function () { split = Number(slider.value) / 100; draw(); });
      var dragging = false;
      var fromPointer = function (ev) {
        var r = cmp.getBoundingClientRect();
        split = Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width));
        slider.value = String(Math.round(split * 100));
        draw();
      };
      var box = cmp.parentNode;
      box.addEventListener("pointerdown", function (ev) { dragging = true; box.setPointerCapture(ev.pointerId); fromPointer(ev); });
      box.addEventListener("pointermove", function (ev) { if (dragging) { fromPointer(ev); } });
      box.addEventListener("pointerup", function () { dragging = false; });
    }
    document.addEventListener("keydown", function (ev) {
      if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      if (ev.key === "ArrowRight" || ev.key === ".") { ev.preventDefault(); stop(); go(frame + 1); }
      else if (ev.key === "ArrowLeft" || ev.key === ",") { ev.preventDefault(); stop(); go(frame - 1); }
      else if (ev.key === " " && ev.target.tagName !== "BUTTON") { ev.preventDefault(); toggle(); }
    });
    window.addEventListener("resize", layout);
    layout();
  }

  function init() {
    if (body.dataset.kind === "index") { initIndex(); }
    if (body.dataset.kind === "sample") { initPager(); initPlayer(); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
"""
