// Breakwater dashboard: draws the charts (uPlot) from the JSON endpoints named by each
// .plot[data-src]. The pages work without it: every figure is also in a server-rendered table.
"use strict";

(function () {
  var PALETTE = ["#0b5cad", "#a40e26", "#116329", "#9a6700", "#6f42c1", "#0a7c86", "#b35900", "#57606a", "#d63384"];

  function formatter(unit) {
    if (unit === "usd") return function (u, v) { return v == null ? "" : "$" + (Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3)); };
    if (unit === "ms") return function (u, v) { return v == null ? "" : v.toFixed(0) + " ms"; };
    if (unit === "pct") return function (u, v) { return v == null ? "" : (v * 100).toFixed(1) + "%"; };
    return function (u, v) { return v == null ? "" : String(Math.round(v * 1000) / 1000); };
  }

  function empty(el, text) {
    var p = document.createElement("p");
    p.className = "empty";
    p.textContent = text;
    el.replaceChildren(p);
  }

  // data: {"x": [unix seconds], "charts": {name: [{"label", "values"}]}}; the element names its chart
  function draw(el, all) {
    var data = { x: all.x, series: (all.charts || {})[el.dataset.series] };
    var some = (data.series || []).some(function (s) { return s.values.some(function (v) { return v != null; }); });
    if (!data.x || data.x.length === 0 || !some) {
      empty(el, "No data in this window.");
      return;
    }
    var unit = el.dataset.unit || "";
    var fmt = formatter(unit);
    var series = [{}];
    var columns = [data.x];
    data.series.forEach(function (s, i) {
      var colour = PALETTE[i % PALETTE.length];
      series.push({ label: s.label, stroke: colour, width: 2, points: { show: data.x.length < 3 }, value: fmt, spanGaps: false });
      columns.push(s.values);
    });
    var opts = {
      width: Math.max(300, el.clientWidth || 400),
      height: 220,
      series: series,
      axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return fmt(u, v); }); }, size: 84 }],
      scales: { x: { time: true } },
      legend: { live: true },
    };
    el.replaceChildren();
    var chart = new uPlot(opts, columns, el);
    window.addEventListener("resize", function () { chart.setSize({ width: Math.max(300, el.clientWidth), height: 220 }); });
  }

  var fetched = {};  // one request per URL, however many charts it feeds

  function load(el) {
    var src = el.dataset.src;
    if (!fetched[src]) {
      fetched[src] = fetch(src, { credentials: "same-origin", headers: { accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; });
    }
    fetched[src]
      .then(function (data) {
        if (data === null) { empty(el, "The chart could not be loaded."); return; }
        draw(el, data);
      })
      .catch(function () { empty(el, "The chart could not be loaded."); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof uPlot !== "undefined") {
      document.querySelectorAll(".plot[data-src]").forEach(load);
    }
  });
})();
