// ship dashboard: draws the DORA charts with Chart.js from the data embedded in the page.
// Readable without colour: each environment keeps its own fill pattern (bars), point shape and
// line dash (lines), and the legend names it; each chart's numbers are also in the table below
// it. Logs nothing.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("ship-data").textContent);
  var palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]; // Okabe–Ito
  var shapes = ["circle", "rect", "triangle", "rectRot", "crossRot", "star", "cross"];
  var dashes = [[], [8, 4], [2, 3], [10, 3, 2, 3], [1, 2], [12, 6], [4, 8]];
  var specs = [
    {key: "deployments", kind: "count"},
    {key: "lead_time", kind: "duration"},
    {key: "change_failure_rate", kind: "percent"},
    {key: "time_to_restore", kind: "duration"}
  ];

  // A fill that tells the environments apart without colour: solid, hatched, dotted, striped.
  function pattern(i, color) {
    var tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    var g = tile.getContext("2d");
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, 8, 8);
    g.fillStyle = g.strokeStyle = color;
    g.lineWidth = 2;
    switch (i % 4) {
      case 0: g.fillRect(0, 0, 8, 8); break;
      case 1: g.beginPath(); g.moveTo(-1, 9); g.lineTo(9, -1); g.moveTo(-1, 1); g.lineTo(1, -1);
              g.moveTo(7, 9); g.lineTo(9, 7); g.stroke(); break;
      case 2: g.beginPath(); g.arc(4, 4, 2, 0, 2 * Math.PI); g.fill(); break;
      default: g.fillRect(0, 0, 8, 3);
    }
    return g.createPattern(tile, "repeat");
  }

  function scaleFor(kind, values) {
    if (kind === "count") return {divide: 1, label: "deployments"};
    if (kind === "percent") return {divide: 0.01, label: "% of decided deployments"};
    var max = Math.max.apply(null, values.concat([0]));
    if (max >= 2 * 86400) return {divide: 86400, label: "days"};
    if (max >= 2 * 3600) return {divide: 3600, label: "hours"};
    return {divide: 60, label: "minutes"};
  }

  function draw(spec) {
    var canvas = document.getElementById("chart-" + spec.key);
    if (!canvas) return 0;
    var values = [];
    data.environments.forEach(function (env) {
      env[spec.key].forEach(function (v) { if (v !== null) values.push(v); });
    });
    var scale = scaleFor(spec.kind, values);
    var bars = spec.kind === "count";
    var datasets = data.environments.map(function (env, i) {
      var color = palette[i % palette.length];
      return {
        label: env.environment,
        data: env[spec.key].map(function (v) { return v === null ? null : v / scale.divide; }),
        borderColor: color, backgroundColor: bars ? pattern(i, color) : color,
        borderDash: bars ? [] : dashes[i % dashes.length], pointStyle: shapes[i % shapes.length],
        pointRadius: 5, pointHoverRadius: 7, borderWidth: bars ? 1.5 : 2, tension: 0, spanGaps: true
      };
    });
    new Chart(canvas, {
      type: bars ? "bar" : "line",
      data: {labels: data.labels, datasets: datasets},
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, normalized: true,
        interaction: {mode: "index", intersect: false},
        plugins: {legend: {position: "bottom", labels: {usePointStyle: !bars, boxWidth: bars ? 18 : 10}}},
        scales: {y: {beginAtZero: true, ticks: {precision: bars ? 0 : undefined},
                     title: {display: true, text: scale.label}},
                 x: {ticks: {autoSkip: true, maxRotation: 0}}}
      }
    });
    return 1;
  }

  var drawn = 0;
  specs.forEach(function (spec) { drawn += draw(spec); });
  document.body.setAttribute("data-charts-rendered", String(drawn));
  document.body.setAttribute("data-ready-ms", String(Math.round(performance.now())));  // since navigation
})();
