// ntp-monitor dashboard: plain JS over the JSON API, charts with uPlot.
"use strict";

const COLORS = ["#0969da", "#8250df", "#bf3989", "#1a7f37", "#bc4c00", "#0a7b83", "#6e7781"];
const KINDS = ["NTP_COMM_FAILED", "NTP_THRESHOLD_REACHED", "NTS_AUTH_FAILED", "SOURCES_DISAGREE",
  "HOLD_ENTERED", "HOLD_RELEASED", "LEAP_PENDING"];
const KIND_COLORS = ["#c62828", "#d9480f", "#ad1457", "#b58100", "#6a1b9a", "#1a7f37", "#0969da"];
const STATE_LEVEL = { UNTRUSTED: 0, DEGRADED: 1, TRUSTED: 2 };

const RANGES = ["1h", "today", "7d", "30d", "365d", "custom"];
let range = new URLSearchParams(location.search).get("range") || "1h";
if (!RANGES.includes(range)) range = "1h";
let charts = [];
let lastStatus = null;

const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function fmtSec(v) {
  if (v == null) return "–";
  const a = Math.abs(v);
  if (a >= 1) return v.toFixed(3) + " s";
  if (a >= 1e-3) return (v * 1e3).toFixed(3) + " ms";
  return (v * 1e6).toFixed(1) + " µs";
}

function fmtAge(ms) {
  if (ms == null) return "–";
  const s = Math.round(ms / 1000);
  if (s < 120) return s + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

function utc(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

function rangeBounds(now, startedMs) {
  const H = 3600e3, D = 24 * H;
  if (range === "custom") {
    const f = Date.parse($("from").value + "Z"), t = Date.parse($("to").value + "Z");
    if (!isNaN(f) && !isNaN(t) && t > f) return [f, t];
  }
  if (range === "today") { const d = new Date(now); return [Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()), now]; }
  if (range === "7d") return [now - 7 * D, now];
  if (range === "30d") return [now - 30 * D, now];
  if (range === "365d") return [now - 365 * D, now];
  return [now - H, now];
}

function renderStatus(st) {
  lastStatus = st;
  const v = st.verdict;
  const state = v ? v.verdict : "UNTRUSTED";
  const badge = $("verdict");
  badge.textContent = state + (st.healthy ? "" : " · do not sign");
  badge.className = "badge " + state;
  $("lease").textContent = v
    ? "issued " + v.issued_at + " · valid until " + v.valid_until + " · round " + st.round + " (" + (st.outcome || "") + ")"
    : "no round finished yet";
  $("reasons").innerHTML = (v ? v.reasons : []).slice(0, 4)
    .map((r) => "<li>" + (r.alert ? '<span class="kind">' + esc(r.alert) + "</span> " : "") + esc(r.message) + "</li>").join("");
  const p = st.policy;
  $("policy").textContent = "· mode " + p.mode + ", |offset| ≤ " + fmtSec(p.max_offset_s) + ", every " + p.interval_s +
    " s, hold after " + p.hold_after + ", release after " + p.release_after + ", lease " + p.lease_s + " s";
  $("sources").innerHTML = st.sources.map((s, i) => {
    const l = s.last, smp = s.last_sample;
    const ok = s.passed === true ? '<span class="pass">✓</span>' : s.passed === false ? '<span class="fail">✗</span>' : "?";
    return "<tr>" +
      "<td>" + (s.nts ? "N" : "^") + "</td><td>" + ok + "</td>" +
      '<td><span style="color:' + COLORS[i % COLORS.length] + '">■</span> ' + esc(s.name) + "</td>" +
      "<td>" + esc(s.operator) + "</td><td>" + esc(s.address) + "</td>" +
      "<td>" + esc(smp && smp.stratum != null ? smp.stratum : "–") + "</td>" +
      "<td>" + s.reach.toString(8).padStart(3, "0") + "</td>" +
      "<td>" + fmtAge(smp ? st.now_ms - smp.at_ms : null) + "</td>" +
      '<td class="num">' + (smp ? (smp.offset_s >= 0 ? "+" : "") + fmtSec(smp.offset_s) : "–") + "</td>" +
      '<td class="num">' + fmtSec(smp ? smp.delay_s : null) + "</td>" +
      '<td class="num">' + fmtSec(smp ? smp.jitter_s : null) + "</td>" +
      '<td class="diag">' + (l ? '<span class="' + (l.passed ? "pass" : "fail") + '">' + esc(l.result) + "</span> " +
        '<span class="meta">' + esc(l.diagnostic.slice(0, 160)) + "</span>" : "–") + "</td>" +
      "</tr>";
  }).join("");
}

function width(el) {
  // Size from the grid, not the chart's own box (which a previous chart
  // may have widened): full width, or half of it less the gap.
  const grid = (el.parentElement && el.parentElement.getBoundingClientRect().width) || 900;
  const page = document.documentElement.clientWidth - 2 * 22 - 2 * 17;
  const full = Math.floor(Math.max(320, Math.min(grid, page)));
  return el.classList.contains("wide") ? full : Math.floor((full - 16) / 2);
}

function lineChart(el, title, unit, xs, series, xr, extra) {
  const opts = {
    title: title, width: width(el), height: el.classList.contains("wide") ? 240 : 200,
    cursor: { sync: { key: "ntp" } },
    scales: { x: { time: true, range: () => xr } },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    series: [{}].concat(series),
    axes: [{}, { label: unit, size: 64 }],
    legend: { live: true },
  };
  if (el.classList.contains("wide")) {
    // The full-width charts share one time axis: same left and right gutters.
    opts.axes[1].size = 200;
    opts.axes.push({ side: 1, size: 90, scale: "y", grid: { show: false }, ticks: { show: false }, values: (u, v) => v.map(() => "") });
  }
  if (extra) extra(opts);
  return new uPlot(opts, [xs].concat(series.map((s) => s.data)), el);
}

async function refreshCharts() {
  const st = lastStatus || await getJSON("/api/status");
  const now = st.now_ms;
  const [from, to] = rangeBounds(now);
  const q = "from=" + Math.floor(from) + "&to=" + Math.ceil(to + 1);
  const [series, alerts, verdicts] = await Promise.all([
    getJSON("/api/series?" + q + "&points=600"),
    getJSON("/api/alerts?" + q),
    getJSON("/api/verdicts?" + q),
  ]);
  const pts = series.points;
  // The x axis starts where the data starts, so a young log is not a sliver.
  let first = to;
  for (const p of pts) first = Math.min(first, p.t);
  for (const a of alerts.alerts) first = Math.min(first, a.at_ms);
  for (const v of verdicts.verdicts) first = Math.min(first, Math.max(v.at_ms, from));
  first = Math.min(first, series.from_ms);
  // At least 20 s wide, so the time ticks stay readable on a new log.
  const x0 = Math.max(from, Math.min(to - 20e3, first === to ? from : first - series.bucket_ms));
  const xr = [x0 / 1000, to / 1000];
  $("rangeinfo").textContent = "· " + utc(x0) + " – " + utc(to) + " UTC, " + (series.bucket_ms / 1000) + " s buckets";

  const names = st.sources.map((s) => s.name);
  const ts = Array.from(new Set(pts.map((p) => p.t))).sort((a, b) => a - b);
  const idx = new Map(ts.map((t, i) => [t, i]));
  const col = (name, key, scale) => {
    const a = new Array(ts.length).fill(null);
    for (const p of pts) if (p.source === name && p[key] != null) a[idx.get(p.t)] = p[key] * scale;
    return a;
  };
  const xs = ts.map((t) => t / 1000);
  const perSource = (key) => names.map((n, i) => ({
    label: n, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
    points: { show: ts.length < 120 }, data: col(n, key, 1000),
  }));

  charts.forEach((c) => c.destroy());
  charts = [];
  ["c-offset", "c-jitter", "c-delay", "c-pass", "c-strip", "c-alerts"].forEach((id) => { $(id).innerHTML = ""; });

  const maxMs = st.policy.max_offset_s * 1000;
  const offsetSeries = perSource("offset_s").concat([
    { label: "+limit", stroke: "#c62828", dash: [6, 4], width: 1, points: { show: false }, data: xs.map(() => maxMs) },
    { label: "−limit", stroke: "#c62828", dash: [6, 4], width: 1, points: { show: false }, data: xs.map(() => -maxMs) },
  ]);
  charts.push(lineChart($("c-offset"), "Offset (server − local clock)", "ms", xs, offsetSeries, xr));
  charts.push(lineChart($("c-jitter"), "Jitter", "ms", xs, perSource("jitter_s"), xr));
  charts.push(lineChart($("c-delay"), "Round-trip delay", "ms", xs, perSource("delay_s"), xr));

  // Pass/fail per bucket over all sources, and the verdict as a step line.
  const passed = new Array(ts.length).fill(0), failed = new Array(ts.length).fill(0);
  for (const p of pts) { passed[idx.get(p.t)] += p.passed; failed[idx.get(p.t)] += p.failed; }
  const vs = verdicts.verdicts;
  const level = ts.map((t) => {
    let l = null;
    for (const v of vs) { if (v.at_ms <= t + series.bucket_ms) l = STATE_LEVEL[v.state]; else break; }
    return l;
  });
  const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
  const stepped = uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
  charts.push(lineChart($("c-pass"), "Checks passed / failed, and the verdict", "checks", xs, [
    // Stacked: all checks in red behind, the passed ones in green in front,
    // so the red cap is the failed count (which the legend shows).
    { label: "failed", stroke: "#c62828", fill: "#ef9a9a", paths: bars, points: { show: false },
      data: passed.map((p, i) => p + failed[i]), value: (u, v, si, i) => (i == null ? "–" : failed[i]) },
    { label: "passed", stroke: "#1a7f37", fill: "#a5d6a7", paths: bars, points: { show: false }, data: passed },
    { label: "verdict", stroke: "#1f2328", width: 2, paths: stepped, scale: "v", points: { show: false }, data: level,
      value: (u, v) => v == null ? "–" : ["UNTRUSTED", "DEGRADED", "TRUSTED"][v] },
  ], xr, (o) => {
    o.scales.y = { range: (u, min, max) => [0, Math.max(1, max) * 1.1] };
    o.scales.v = { range: [-0.2, 2.2] };
    o.axes.pop();
    o.axes.push({ scale: "v", side: 1, size: 90, grid: { show: false }, splits: [0, 1, 2],
      values: (u, vals) => vals.map((v) => ["UNTRUSTED", "DEGRADED", "TRUSTED"][v] || "") });
  }));

  // Pass/fail per source: one row per source, a green dot for a bucket
  // where every check passed, a red one where any failed.
  const strip = [];
  names.forEach((n, i) => {
    const ok = new Array(ts.length).fill(null), bad = new Array(ts.length).fill(null);
    for (const p of pts) {
      if (p.source !== n) continue;
      const j = idx.get(p.t);
      if (p.failed > 0) bad[j] = i; else if (p.passed > 0) ok[j] = i;
    }
    const c = COLORS[i % COLORS.length];
    strip.push({ label: n + " passed", stroke: c, width: 0, points: { show: true, size: 8, fill: "#2da44e", stroke: "#2da44e" }, data: ok });
    strip.push({ label: n + " failed", stroke: c, width: 0, points: { show: true, size: 8, fill: "#cf222e", stroke: "#cf222e" }, data: bad });
  });
  charts.push(lineChart($("c-strip"), "Pass / fail per source", "", xs.length ? xs : [xr[0]],
    xs.length ? strip : strip.map((x) => Object.assign({}, x, { data: [null] })), xr, (o) => {
      o.height = 70 + 26 * names.length;
      o.legend = { show: false };
      o.scales.y = { range: [-0.6, names.length - 0.4] };
      o.axes[1] = { size: 200, splits: names.map((_, i) => i), values: (u, vals) => vals.map((v) => names[v] || "") };
    }));

  // Alert timeline on the same time axis: one row per alert kind.
  const al = alerts.alerts;
  const axs = al.map((a) => a.at_ms / 1000);
  const kindSeries = KINDS.map((k, i) => ({
    label: k, stroke: KIND_COLORS[i], fill: KIND_COLORS[i], width: 0,
    points: { show: true, size: 9, fill: KIND_COLORS[i] },
    data: al.map((a) => (a.kind === k ? i : null)),
  }));
  charts.push(lineChart($("c-alerts"), "Alert timeline", "", axs.length ? axs : [xr[0]], axs.length ? kindSeries :
    kindSeries.map((s) => Object.assign({}, s, { data: [null] })), xr, (o) => {
    o.height = 200;
    o.legend = { show: false };
    o.scales.y = { range: [-0.5, KINDS.length - 0.5] };
    o.axes[1] = { size: 200, font: "11px system-ui, sans-serif", splits: KINDS.map((_, i) => i), values: (u, vals) => vals.map((v) => KINDS[v] || "") };
  }));

  $("alerts").innerHTML = al.length ? al.slice().reverse().slice(0, 200).map((a) => {
    const i = KINDS.indexOf(a.kind);
    return "<tr><td>" + utc(a.at_ms) + '</td><td><span class="kind" style="color:' + (KIND_COLORS[i] || "#000") + '">' +
      esc(a.kind) + "</span></td><td>" + esc(a.source || "") + '</td><td class="diag">' + esc(a.message) + "</td></tr>";
  }).join("") : '<tr><td colspan="4" class="empty">no alerts in this range</td></tr>';

  const n = pts.length;
  if (!window.__errors.length) document.title = "ntp-monitor: ready (" + n + " points, " + al.length + " alerts)";
}

async function tick() {
  try {
    renderStatus(await getJSON("/api/status"));
  } catch (e) {
    $("lease").textContent = "monitor unreachable: " + e.message;
  }
}

function setRange(r) {
  range = r;
  const q = r === "custom" ? "?range=custom&from=" + encodeURIComponent($("from").value) + "&to=" + encodeURIComponent($("to").value) : "?range=" + r;
  try { history.replaceState(null, "", q); } catch (e) { /* file: or sandboxed */ }
  document.querySelectorAll("#ranges button").forEach((b) => b.classList.toggle("on", b.dataset.range === r));
  refreshCharts().catch((e) => window.onerror(e.message, "refreshCharts", 0));
}

document.querySelectorAll("#ranges button").forEach((b) => b.addEventListener("click", () => setRange(b.dataset.range)));
{
  const now = new Date(), iso = (d) => d.toISOString().slice(0, 16);
  const p = new URLSearchParams(location.search);
  $("to").value = p.get("to") || iso(now);
  $("from").value = p.get("from") || iso(new Date(now.getTime() - 6 * 3600e3));
}

tick().then(() => setRange(range));
setInterval(tick, 2000);
setInterval(() => { if (range !== "custom") refreshCharts().catch((e) => window.onerror(e.message, "refreshCharts", 0)); }, 10000);
let resizeTimer = null;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => refreshCharts(), 200); });
