// Forgeline web UI: metric charts (uPlot), mounted only when scrolled into view.
// A chart element: <div class="chart" data-src="URL returning {series:[{label, steps, values}]}">.
// Zooming (drag a range) asks the server again for that step range: the exact points once
// they fit; a double click goes back to the whole series.
(function () {
  "use strict";
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                  "#be185d", "#4d7c0f", "#7c3aed", "#b45309"];
  window.forgeline = window.forgeline || {};
  forgeline.charts = 0;  // charts drawn (read by the benchmarks and tests)

  function url(src, lo, hi) {
    const u = new URL(src, location.href);
    if (lo != null) { u.searchParams.set("min_step", Math.floor(lo)); }
    if (hi != null) { u.searchParams.set("max_step", Math.ceil(hi)); }
    return u.toString();
  }

  function align(series) {  // uPlot wants one x array: the union of the series' steps
    if (series.length === 1) { return [series[0].steps, series[0].values]; }
    const xs = Array.from(new Set(series.flatMap(s => s.steps))).sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const ys = series.map(s => {
      const y = new Array(xs.length).fill(null);
      s.steps.forEach((x, i) => { y[at.get(x)] = s.values[i]; });
      return y;
    });
    return [xs, ...ys];
  }

  async function load(el, lo, hi) {
    const r = await fetch(url(el.dataset.src, lo, hi),
                          {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }

  function note(el, body) {
    let n = el.querySelector(".note");
    if (!n) { n = document.createElement("div"); n.className = "note"; el.appendChild(n); }
    const total = body.series.reduce((a, s) => a + (s.total || s.steps.length), 0);
    const shown = body.series.reduce((a, s) => a + s.steps.length, 0);
    n.textContent = shown < total ? `${shown.toLocaleString()} of ${total.toLocaleString()} points shown (zoom for exact values)`
                                  : `${total.toLocaleString()} points`;
  }

  async function draw(el) {  // el._busy: a live refresh waits for the draw under way
    el._busy = true;
    try { await drawNow(el); } finally { el._busy = false; }
  }

  // Charts load two at a time, in the order they came into view: the server reads each
  // long series once (a few hundred ms for a million points), and the first charts on the
  // screen come first instead of all at the end together.
  const waiting = [];
  let loading = 0;
  function queued(el) {
    return new Promise((resolve, reject) => {
      waiting.push(() => load(el).then(resolve, reject).finally(() => { loading -= 1; next(); }));
      next();
    });
  }
  function next() {
    while (loading < 2 && waiting.length) { loading += 1; waiting.shift()(); }
  }

  async function drawNow(el) {
    el.dataset.mounted = "1";
    let body;
    try { body = await queued(el); } catch (e) {
      el.textContent = "Could not load the chart: " + e.message; el.classList.add("error"); return;
    }
    if (!body.series.length || !body.series.some(s => s.steps.length)) {
      el.textContent = "No points."; return;
    }
    // data-one-point="text": a metric logged once (per series) is shown as its value
    if (el.dataset.onePoint === "text" && body.series.every(s => (s.total ?? s.steps.length) <= 1)) {
      const value = v => v == null ? "NaN" : String(+Number(v).toPrecision(5));
      el.classList.add("single");
      el.textContent = body.series.filter(s => s.steps.length).map(s =>
        (body.series.length > 1 ? s.label + ": " : "") + value(s.values[0]) + " at step " + s.steps[0]).join(" · ");
      return;
    }
    el.classList.remove("single");
    const width = Math.max(300, el.clientWidth || 400);
    const time = el.dataset.time === "1";  // steps are epoch seconds: dates on x, in UTC
    const opts = {
      width, height: 220, legend: {live: true},
      scales: {x: {time}},
      tzDate: ts => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      cursor: {drag: {x: true, y: false}},
      axes: [{label: el.dataset.xlabel || "step"}, {}],
      series: [{label: time ? "time" : "step"}, ...body.series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
        points: {show: s.steps.length < 60}}))],
      hooks: {setSelect: [async u => {
        if (u.select.width < 3) { return; }
        const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({left: 0, width: 0}, false);
        el._zoomed = true;  // a live refresh leaves a zoomed chart alone
        const zoomed = await load(el, lo, hi);
        u.setData(align(zoomed.series)); note(el, zoomed);
      }]},
    };
    el.textContent = "";
    const plot = new uPlot(opts, align(body.series), el);
    note(el, body);
    plot.over.addEventListener("dblclick", async () => {
      el._zoomed = false;
      const all = await load(el); plot.setData(align(all.series)); note(el, all);
    });
    el._plot = plot;
    forgeline.charts += 1;
    el.dispatchEvent(new CustomEvent("forgeline:drawn", {bubbles: true}));
  }
  forgeline.redraw = async function (el) { if (el._plot) { el._plot.destroy(); el._plot = null; } await draw(el); };

  const seen = new IntersectionObserver(entries => {
    for (const e of entries) {
      if (e.isIntersecting && !e.target.dataset.mounted) { seen.unobserve(e.target); draw(e.target); }
    }
  }, {rootMargin: "200px"});

  function mount(root) {
    root.querySelectorAll(".chart[data-src]").forEach(el => { if (!el.dataset.mounted) { seen.observe(el); } });
  }
  htmx.onLoad(mount);

  // A page of a running run polls a fragment whose answer triggers "forgeline-refresh"
  // (HX-Trigger): the charts in view that are not zoomed load their points again.
  function inView(el) {
    const r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight;
  }
  async function refresh(el) {
    if (!el._plot) { await forgeline.redraw(el); return; }  // it had no points yet
    const body = await load(el);
    if (body.series.length === el._plot.series.length - 1) {
      el._plot.setData(align(body.series)); note(el, body);
    } else { await forgeline.redraw(el); }
  }
  document.addEventListener("forgeline-refresh", () => {
    document.querySelectorAll(".chart[data-mounted]").forEach(el => {
      if (!el._zoomed && !el._busy && inView(el)) { refresh(el).catch(() => { /* the next poll tries again */ }); }
    });
  });
})();

// The runs table: a parent's button shows or hides its child runs' rows.
document.addEventListener("click", e => {
  const button = e.target.closest("button.fold");
  if (!button) { return; }
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(open));
  button.textContent = (open ? "▾" : "▸") + button.textContent.slice(1);
  document.querySelectorAll(`tr.child[data-parent="${button.dataset.fold}"]`)
    .forEach(row => { row.hidden = !open; });
});
