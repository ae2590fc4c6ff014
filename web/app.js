// The static dashboard: loads the data files listed in data/manifest.json,
// computes the heat map in the browser with safetyscope-wasm and draws it.
// Every string that comes from data is inserted with textContent.
import init, { Session, palettes } from "./pkg/safetyscope_wasm.js";

const I18N = {
  zh: { title: "安全生产风险看板", site: "单位", from: "开始", to: "结束", incidents: "事故/未遂", hazards: "隐患", violations: "违章",
        map: "事件热力图（按网格）", detail: "网格详情", validation: "数据校验", table: "表", read: "读取", accepted: "接受", rejected: "拒绝",
        cell: "网格", zone: "区域", owner: "责任人", events: "事件数", injuries: "伤害", near: "未遂", lang: "English", legend: "颜色越深事件越多，最大值", unplaced: "不在平面图上的网格",
        v_risk: "风险四色图", v_events: "事件热力", v_hotspots: "热点分析", t_risk: "风险四色图（按网格）", t_events: "事件热力图（按网格）", t_hotspots: "热点分析（Getis-Ord Gi*）",
        red: "重大风险", orange: "较大风险", yellow: "一般风险", blue: "低风险", score: "风险分值", level: "风险等级", static_level: "固有风险", dynamic_level: "动态风险", trend: "趋势",
        risk_legend: "红=重大 橙=较大 黄=一般 蓝=低；▲ 为统计显著热点；数字为窗口内风险分值", hot_legend: "+3/+2/+1 热点（99/95/90%），−1/−2/−3 冷点，0 不显著（FDR 校正）", z: "z 值", class: "类别",
        when: "时段分布（小时 × 星期，事件数；粗框 = 显著高峰）", periods: "高风险时段（FDR 校正）", day: "星期", hours: "时段", ratio: "率比", expected: "期望", q: "q 值", none: "无显著高峰",
        days: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
        own: "打开自己的文件（按表命名，如 incidents.csv；可附映射 .toml）", zone_hour: "区域 × 小时（事件数）", all: "全部", category: "类型", severity: "严重度", recent: "最近事件", export_svg: "导出 SVG", export_png: "导出 PNG", export_csv: "导出 CSV",
        targets: "目标跟踪", alerts: "待办提醒", actual: "实际", target: "目标", projection: "预测", kind: "类别", subject: "对象", since: "起始", note: "说明",
        achieved: "已达成", on_track: "正常", at_risk: "有风险", off_track: "偏离", missed: "未达成", no_data: "无数据",
        overdue_hazard: "逾期隐患", repeat_violation: "连续违章", fence_intrusion: "闯入围栏", sensor_alarm: "传感器报警", low_points: "安全积分低",
        kpi_names: { trir: "可记录事件率 TRIR", fatalities: "死亡人数", rectification_rate: "隐患整改率", rectification_cycle_hours: "整改周期（小时）", training_coverage: "培训覆盖率", drill_response_minutes: "演练响应（分钟）", leader_inspections_per_month: "领导带班检查（次/月）", suggestions_per_month: "合理化建议（条/月）", equipment_readiness: "应急设备完好率" } },
  en: { title: "Safety risk dashboard", site: "Site", from: "From", to: "To", incidents: "Incidents", hazards: "Hazards", violations: "Violations",
        map: "Events per grid cell", detail: "Cell details", validation: "Data validation", table: "Table", read: "Read", accepted: "Accepted", rejected: "Rejected",
        cell: "Cell", zone: "Zone", owner: "Owner", events: "Events", injuries: "Injuries", near: "Near misses", lang: "中文", legend: "Darker = more events; maximum", unplaced: "Cells not on the plan",
        v_risk: "Risk map", v_events: "Events", v_hotspots: "Hot spots", t_risk: "Risk four-colour map by cell", t_events: "Events per grid cell", t_hotspots: "Hot spots (Getis-Ord Gi*)",
        red: "Major", orange: "High", yellow: "Moderate", blue: "Low", score: "Risk score", level: "Level", static_level: "Static level", dynamic_level: "Dynamic level", trend: "Trend",
        risk_legend: "Red = major, orange = high, yellow = moderate, blue = low; ▲ = significant hot spot; the number is the window's risk score", hot_legend: "+3/+2/+1 hot (99/95/90 %), −1/−2/−3 cold, 0 not significant (FDR-adjusted)", z: "z-score", class: "Class",
        when: "When: events by hour × weekday (bold frame = significant peak)", periods: "High-risk periods (FDR-adjusted)", day: "Day", hours: "Hours", ratio: "Rate ratio", expected: "Expected", q: "q", none: "No significant peaks",
        days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        own: "Open your own files (named after the table, e.g. incidents.csv; optionally a mapping .toml)", zone_hour: "Zone × hour (events)", all: "All", category: "Category", severity: "Severity", recent: "Recent events", export_svg: "SVG", export_png: "PNG", export_csv: "CSV",
        targets: "Targets", alerts: "To chase", actual: "Actual", target: "Target", projection: "Projection", kind: "Kind", subject: "Subject", since: "Since", note: "Detail",
        achieved: "Achieved", on_track: "On track", at_risk: "At risk", off_track: "Off track", missed: "Missed", no_data: "No data",
        overdue_hazard: "Overdue hazard", repeat_violation: "Repeat violation", fence_intrusion: "Fence intrusion", sensor_alarm: "Sensor alarm", low_points: "Low safety points",
        kpi_names: { trir: "TRIR", fatalities: "Fatalities", rectification_rate: "Rectification rate", rectification_cycle_hours: "Rectification cycle (h)", training_coverage: "Training coverage", drill_response_minutes: "Drill response (min)", leader_inspections_per_month: "Leader inspections / month", suggestions_per_month: "Suggestions / month", equipment_readiness: "Equipment readiness" } },
};
let lang = "zh";
let session = null;
let lastRows = [];
let lastPeaks = { cells: [], periods: [] };
let lastTargets = [];
// The last chart and rows of every exportable section.
const exportsOf = { map: { svg: "", rows: [] }, when: { svg: "", rows: [] }, zonehour: { svg: "", rows: [] }, targets: { svg: "", rows: [] }, alerts: { svg: "", rows: [] } };
let lastAlerts = [];
// The colours of the core's charts, read from the module once it is loaded.
let PALETTE = { levels: {}, classes: {}, statuses: {}, sequential: [[0, "#ffffe5"]] };
const STATUS_COLORS = new Proxy({}, { get: (_, k) => PALETTE.statuses[k] });
const fmt = (v) => v == null ? "—" : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3);
let view = "risk";
const LEVEL_COLORS = new Proxy({}, { get: (_, k) => PALETTE.levels[k] });
const CLASS_COLORS = new Proxy({}, { get: (_, k) => PALETTE.classes[k] });
const ink = (hex) => {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) > 140 ? "#111" : "#fff";
};

const $ = (id) => document.getElementById(id);
const t = (k) => I18N[lang][k] ?? k;

function showError(msg) {
  const box = $("error");
  box.textContent = msg;
  box.hidden = false;
}

function applyLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("lang").textContent = t("lang");
  draw(lastRows);
  drawWhen(lastPeaks);
  drawTargets(lastTargets);
  drawAlerts(lastAlerts);
}

// The core's sequential ramp at v / max (sampled in steps of 1 %).
function color(v, max) {
  const x = max > 0 ? Math.min(1, Math.max(0, v / max)) : 0;
  const ramp = PALETTE.sequential;
  const bg = ramp[Math.min(ramp.length - 1, Math.round(x * (ramp.length - 1)))][1];
  return { bg, ink: ink(bg) };
}

function look(r, max) {
  if (view === "risk") {
    const bg = LEVEL_COLORS[r.level] ?? "#ccc";
    const hot = typeof r.hotspot === "string" && r.hotspot.startsWith("hot_");
    return { bg, fg: ink(bg), tag: t(r.level) + (hot ? " ▲" : ""), value: Math.round(r.score), attr: { level: r.level, value: String(r.score), hotspot: r.hotspot ?? "" } };
  }
  if (view === "hotspots") {
    const bg = CLASS_COLORS[r.class] ?? "#f7f7f7";
    const c = r.confidence;
    return { bg, fg: ink(bg), tag: "", value: c > 0 ? `+${c}` : String(c), attr: { class: r.class, value: String(r.value) } };
  }
  const { bg, ink: fg } = color(r.events, max);
  return { bg, fg, tag: "", value: r.events, attr: { value: String(r.events) } };
}

function draw(rows) {
  const grid = $("grid");
  grid.replaceChildren();
  const placed = rows.filter((r) => r.row !== null && r.row !== undefined);
  const max = Math.max(0, ...rows.map((r) => r.events ?? 0));
  for (const r of placed) {
    const div = document.createElement("div");
    div.className = "cell";
    div.dataset.cell = r.cell;
    const l = look(r, max);
    for (const [k, v] of Object.entries(l.attr)) div.dataset[k] = v;
    div.style.background = l.bg;
    div.style.color = l.fg;
    div.style.gridRow = String(r.row + 1);
    div.style.gridColumn = String(r.col + 1);
    div.title = `${r.cell} · ${t("owner")}: ${r.owner ?? "—"}`;
    const label = document.createElement("span");
    label.textContent = r.cell.split("-").pop();
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = String(l.value);
    div.append(label, value);
    if (l.tag) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = l.tag;
      div.append(tag);
    }
    div.addEventListener("click", () => select(r, div));
    grid.append(div);
  }
  $("map-title").textContent = t(`t_${view}`);
  $("legend").textContent = view === "risk" ? t("risk_legend") : view === "hotspots" ? t("hot_legend") : `${t("legend")} ${max}`;
  const un = $("unplaced");
  un.replaceChildren();
  const unplaced = rows.filter((r) => r.row === null || r.row === undefined);
  if (unplaced.length) {
    const p = document.createElement("p");
    p.textContent = `${t("unplaced")}: ` + unplaced.map((r) => `${r.cell ?? "?"} (${r.events ?? r.value ?? ""})`).join(", ");
    un.append(p);
  }
}

// The hour × weekday matrix as a table (values as text, peaks outlined) and
// the ranked high-risk periods.
function drawWhen(p) {
  const m = $("when");
  m.replaceChildren();
  const head = document.createElement("tr");
  head.append(document.createElement("th"));
  for (let h = 0; h < 24; h++) {
    const th = document.createElement("th"); th.textContent = String(h); head.append(th);
  }
  m.append(head);
  const max = Math.max(0, ...p.cells.map((c) => c.events));
  for (let d = 0; d < 7; d++) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = t("days")[d]; tr.append(th);
    for (let h = 0; h < 24; h++) {
      const c = p.cells.find((x) => x.weekday === d && x.hour === h);
      const td = document.createElement("td");
      const v = c ? c.events : 0;
      const { bg, ink: fg } = color(v, max);
      td.style.background = bg; td.style.color = fg;
      td.textContent = String(v);
      td.dataset.weekday = String(d); td.dataset.hour = String(h);
      if (c && c.significant && c.rate_ratio > 1) td.classList.add("peak");
      if (c) td.title = `${t("days")[d]} ${h}:00 · ${t("events")} ${v} · ${t("expected")} ${c.expected?.toFixed(1) ?? "—"} · ${t("ratio")} ${c.rate_ratio?.toFixed(2) ?? "—"} · q ${c.q_value?.toPrecision(2) ?? "—"}`;
      tr.append(td);
    }
    m.append(tr);
  }
  const body = $("periods").querySelector("tbody");
  body.replaceChildren();
  for (const r of p.periods) {
    const tr = document.createElement("tr");
    const cells = [r.rank, t("days")[r.weekday] ?? "—", `${r.hour_from}:00–${r.hour_to}:00`, r.events, r.expected.toFixed(1), r.rate_ratio?.toFixed(2) ?? "—", r.q_value.toPrecision(2)];
    for (const v of cells) { const td = document.createElement("td"); td.textContent = String(v); tr.append(td); }
    body.append(tr);
  }
  if (!p.periods.length) {
    const tr = document.createElement("tr"); const td = document.createElement("td");
    td.colSpan = 7; td.textContent = t("none"); tr.append(td); body.append(tr);
  }
}

// One card per target: KPI, period, actual against target, projection and
// the status as text beside its colour.
function drawTargets(rows) {
  const box = $("cards");
  box.replaceChildren();
  for (const r of rows) {
    const card = document.createElement("div");
    card.className = "card";
    card.dataset.kpi = r.kpi; card.dataset.period = r.period; card.dataset.status = r.status;
    card.style.borderLeftColor = STATUS_COLORS[r.status] ?? "#bdbdbd";
    const h = document.createElement("h3"); h.textContent = `${t("kpi_names")[r.kpi] ?? r.kpi} · ${r.period}`;
    const v = document.createElement("p"); v.className = "value";
    v.textContent = `${t("actual")} ${fmt(r.actual)} / ${t("target")} ${r.direction === "at_most" ? "≤" : "≥"} ${fmt(r.effective_target)}`;
    const p = document.createElement("p"); p.textContent = `${t("projection")} ${fmt(r.projection)}`;
    const st = document.createElement("p"); st.className = "status"; st.textContent = t(r.status);
    st.style.background = STATUS_COLORS[r.status] ?? "#bdbdbd"; st.style.color = ink(STATUS_COLORS[r.status] ?? "#bdbdbd");
    card.append(h, v, p, st);
    box.append(card);
  }
}

function drawAlerts(rows) {
  const counts = $("alert-counts");
  counts.replaceChildren();
  const by = {};
  for (const r of rows) by[r.kind] = (by[r.kind] ?? 0) + 1;
  for (const [k, n] of Object.entries(by)) {
    const s = document.createElement("span"); s.className = "pill"; s.dataset.kind = k; s.textContent = `${t(k)} ${n}`; counts.append(s);
  }
  const body = $("alerts").querySelector("tbody");
  body.replaceChildren();
  for (const r of rows.slice(0, 200)) {
    const tr = document.createElement("tr"); tr.dataset.kind = r.kind;
    for (const v of [t(r.kind), r.subject, r.site, r.since, r.level, r.detail]) {
      const td = document.createElement("td"); td.textContent = v == null ? "—" : String(v); tr.append(td);
    }
    body.append(tr);
  }
}

// Zone × hour: events summed over the weekdays, one row per zone.
function drawZoneHour(rows) {
  const m = $("zonehour");
  m.replaceChildren();
  const zones = [...new Set(rows.filter((r) => r.hour != null).map((r) => r.zone ?? "—"))].sort();
  const sum = {};
  for (const r of rows) if (r.hour != null) sum[`${r.zone ?? "—"}|${r.hour}`] = (sum[`${r.zone ?? "—"}|${r.hour}`] ?? 0) + r.events;
  const max = Math.max(0, ...Object.values(sum));
  const head = document.createElement("tr");
  head.append(document.createElement("th"));
  for (let h = 0; h < 24; h++) { const th = document.createElement("th"); th.textContent = String(h); head.append(th); }
  m.append(head);
  for (const z of zones) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = z; tr.append(th);
    for (let h = 0; h < 24; h++) {
      const v = sum[`${z}|${h}`] ?? 0;
      const td = document.createElement("td");
      const { bg, ink: fg } = color(v, max);
      td.style.background = bg; td.style.color = fg; td.textContent = String(v);
      td.dataset.zone = z; td.dataset.hour = String(h);
      tr.append(td);
    }
    m.append(tr);
  }
}

// Downloads: a chart as SVG or PNG, a table as CSV. Nothing leaves the page.
function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function csvOf(rows) {
  if (!rows.length) return "";
  const cols = Object.keys(rows[0]);
  const cell = (v) => {
    if (v == null) return "";
    let s = String(v);
    // Text that a spreadsheet would run as a formula is kept as text.
    if (typeof v === "string" && /^[=+\-@]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

async function svgToPng(svg) {
  const img = new Image();
  img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth * 2; canvas.height = img.naturalHeight * 2;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  return await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function exportSection(section, kind) {
  const e = exportsOf[section];
  const name = `safetyscope-${section}`;
  if (kind === "csv") download(`${name}.csv`, new Blob([csvOf(e.rows)], { type: "text/csv;charset=utf-8" }));
  else if (kind === "svg" && e.svg) download(`${name}.svg`, new Blob([e.svg], { type: "image/svg+xml" }));
  else if (kind === "png" && e.svg) download(`${name}.png`, await svgToPng(e.svg));
}

function select(r, div) {
  for (const el of document.querySelectorAll(".cell.selected")) el.classList.remove("selected");
  div.classList.add("selected");
  const dl = $("detail");
  dl.replaceChildren();
  const add = (k, v) => {
    const dt = document.createElement("dt"); dt.textContent = t(k);
    const dd = document.createElement("dd"); dd.textContent = v == null ? "—" : String(v);
    dl.append(dt, dd);
  };
  add("cell", r.cell); add("zone", r.zone); add("owner", r.owner);
  try {
    const ev = JSON.parse(session.patterns("shift_events", JSON.stringify({ ...patternOptions(), zone: null, cell: r.cell }))).rows;
    const recent = ev.slice(-5).reverse().map((e) => `${e.occurred_at} ${e.kind} ${e.category ?? ""} ${e.severity ?? ""}`);
    add("recent", recent.length ? recent.join(" · ") : "—");
  } catch (e) { showError(String(e.message ?? e)); }
  if (view === "risk") {
    add("level", t(r.level)); add("score", r.score.toFixed(1)); add("static_level", r.static_level ? t(r.static_level) : "—");
    add("dynamic_level", t(r.dynamic_level)); add("trend", r.trend);
    add("injuries", r.c_injuries.toFixed(1)); add("near", r.c_near_misses.toFixed(1)); add("hazards", (r.c_open_hazards + r.c_overdue_hazards).toFixed(1)); add("violations", r.c_violations.toFixed(1)); add("sensor_alarm", r.c_alarms.toFixed(1)); add("fence_intrusion", r.c_intrusions.toFixed(1));
  } else if (view === "hotspots") {
    add("class", r.class); add("z", r.z == null ? "—" : r.z.toFixed(2)); add("events", r.value);
  } else {
    add("events", r.events); add("incidents", r.incidents); add("injuries", r.injuries); add("near", r.near_misses); add("hazards", r.hazards); add("violations", r.violations);
  }
}

function showValidation(report) {
  const body = $("validation").querySelector("tbody");
  body.replaceChildren();
  for (const [name, tr] of Object.entries(report.tables)) {
    const row = document.createElement("tr");
    const rejected = Object.values(tr.rejected).reduce((a, r) => a + r.count, 0);
    for (const v of [name, tr.rows_read, tr.rows_accepted, rejected]) {
      const td = document.createElement("td"); td.textContent = String(v); row.append(td);
    }
    body.append(row);
  }
}

function options() {
  const kinds = [...document.querySelectorAll("#kinds input:checked")].map((i) => i.value);
  return { kinds: kinds.length ? kinds : ["incidents"], site: $("site").value || null, from: $("from").value || null, to: $("to").value || null };
}

// The pattern filters: zone, category, severity on top of the common ones.
function patternOptions(extra = {}) {
  const o = options();
  const z = $("zone").value, c = $("category").value, s = $("severity").value;
  return { kinds: o.kinds, site: o.site, from: o.from, to: o.to, zone: z || null, categories: c ? [c] : [], severities: s ? [s] : [], ...extra };
}

// Results of the current session by the options they depend on (cleared
// when another session is loaded).
let results = new Map();
function cached(key, f) {
  if (!results.has(key)) results.set(key, f());
  return results.get(key);
}

// Run one computation and record its duration (User Timing entry
// `safetyscope:compute:NAME`).
function timed(name, f) {
  const t0 = performance.now();
  const r = f();
  performance.measure(`safetyscope:compute:${name}`, { start: t0, end: performance.now() });
  return r;
}

async function recompute() {
  if (!session) return;
  const status = $("status");
  status.dataset.state = "computing";
  const t0 = performance.now();
  try {
    const o = options();
    const out = timed("map", () => JSON.parse(
      view === "risk" ? session.riskMap(JSON.stringify({ site: o.site, from: o.from, to: o.to }))
        : view === "hotspots" ? session.hotspots(JSON.stringify(o))
        : session.heatmap(JSON.stringify(o))));
    lastRows = out.rows;
    exportsOf.map = { svg: out.svg, rows: out.rows };
    draw(lastRows);
    const po = JSON.stringify(patternOptions());
    const pk = timed("peaks", () => JSON.parse(session.peaks(po)));
    lastPeaks = { cells: pk.cells, periods: pk.periods };
    exportsOf.when = { svg: pk.svg, rows: pk.cells };
    drawWhen(lastPeaks);
    const zh = timed("zonehour", () => JSON.parse(session.patterns("profile", JSON.stringify(patternOptions({ by: ["zone"] })))));
    exportsOf.zonehour = { svg: zh.svg, rows: zh.rows };
    drawZoneHour(zh.rows);
    // Targets depend only on the end date, alerts on the site and the end
    // date: other filter changes reuse them.
    const tt = cached(`targets|${o.to}`, () => timed("targets", () => JSON.parse(session.trackTargets(JSON.stringify({ as_of: o.to })))));
    lastTargets = tt.rows;
    exportsOf.targets = { svg: tt.svg, rows: tt.rows };
    drawTargets(lastTargets);
    lastAlerts = cached(`alerts|${o.site}|${o.to}`, () => timed("alerts", () => JSON.parse(session.alerts("all", JSON.stringify({ site: o.site, as_of: o.to }))).rows));
    exportsOf.alerts = { svg: "", rows: lastAlerts };
    drawAlerts(lastAlerts);
    $("error").hidden = true;
    const t1 = performance.now();
    // User Timing entries: visible in the browser's performance tools and
    // read by the dashboard benchmark (bench/bench_dashboard.py).
    performance.measure("safetyscope:recompute", { start: t0, end: t1 });
    status.textContent = `${lastRows.length} cells · ${Math.round(t1 - t0)} ms`;
    status.dataset.state = "ready";
  } catch (e) {
    showError(String(e.message ?? e));
    status.dataset.state = "error";
  }
}

// Load files into a new session and fill the choices from the data. On a
// bad file the error names it and the previous session stays in place.
async function startSession(tables, names, files, mapping, timezone) {
  const t0 = performance.now();
  const next = Session.load(tables, names, files, mapping, timezone);
  performance.measure("safetyscope:load", { start: t0, end: performance.now() });
  session = next;
  results = new Map();
  showValidation(JSON.parse(session.validation()));
  const all = JSON.parse(session.heatmap(JSON.stringify({ kinds: ["incidents"] })));
  for (const id of ["site", "zone", "category", "severity"]) $(id).replaceChildren();
  const sites = [...new Set(all.rows.map((r) => r.site))].sort();
  for (const s of sites) {
    const o = document.createElement("option"); o.value = s; o.textContent = s; $("site").append(o);
  }
  // Zone, category and severity choices from the data.
  const fill = (id, values) => {
    const first = document.createElement("option"); first.value = ""; first.dataset.i18n = "all"; first.textContent = t("all"); $(id).append(first);
    for (const v of values) { const o = document.createElement("option"); o.value = v; o.textContent = v; $(id).append(o); }
  };
  fill("zone", [...new Set(all.rows.map((r) => r.zone).filter((z) => z != null))].sort());
  const pareto = JSON.parse(session.patterns("pareto", JSON.stringify({ kinds: ["incidents"] }))).rows;
  fill("category", pareto.map((r) => r.category).filter((c) => c != null));
  fill("severity", ["near_miss", "first_aid", "minor", "serious", "fatal"]);
  applyLang();
  await recompute();
}

// Files the user chooses or drops: each named after its table
// (incidents.csv, cells.parquet, …), with an optional mapping file.
async function loadOwnFiles(fileList) {
  const tables = [], names = [], files = [];
  let mapping = null;
  for (const f of fileList) {
    if (f.name.toLowerCase().endsWith(".toml")) { mapping = await f.text(); continue; }
    tables.push(f.name.split(".")[0].toLowerCase());
    names.push(f.name);
    files.push(new Uint8Array(await f.arrayBuffer()));
  }
  const previous = session;
  try {
    await startSession(tables, names, files, mapping, null);
    $("status").dataset.state = "ready";
  } catch (e) {
    session = previous;
    showError(String(e.message ?? e));
  }
}

async function main() {
  $("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; applyLang(); });
  $("own-files").addEventListener("change", (e) => loadOwnFiles([...e.target.files]));
  document.body.addEventListener("dragover", (e) => e.preventDefault());
  document.body.addEventListener("drop", (e) => { e.preventDefault(); loadOwnFiles([...e.dataTransfer.files]); });
  for (const b of document.querySelectorAll("button[data-export]")) {
    b.addEventListener("click", () => exportSection(b.dataset.section, b.dataset.export).catch((e) => showError(String(e.message ?? e))));
  }
  for (const el of document.querySelectorAll("#filters select, #filters input")) el.addEventListener("change", () => {
    view = document.querySelector("#view input:checked").value;
    recompute();
  });
  try {
    // A single-file report carries the module and the data inline.
    const inline = document.getElementById("safetyscope-data");
    const bundle = inline ? JSON.parse(inline.textContent) : null;
    const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    if (bundle) await init({ module_or_path: b64(bundle.wasm) });
    else await init();
    PALETTE = JSON.parse(palettes());
    performance.measure("safetyscope:init", { start: 0, end: performance.now() });
    const manifest = bundle ?? await (await fetch("data/manifest.json")).json();
    const tables = [], names = [], files = [];
    for (const f of manifest.files) {
      tables.push(f.table); names.push(f.file);
      if (bundle) { files.push(b64(f.b64)); continue; }
      const resp = await fetch(f.file);
      if (!resp.ok) throw new Error(`${f.file}: HTTP ${resp.status}`);
      files.push(new Uint8Array(await resp.arrayBuffer()));
    }
    let mapping = bundle ? bundle.mapping_text ?? null : null;
    if (!bundle && manifest.mapping) {
      const resp = await fetch(manifest.mapping);
      if (!resp.ok) throw new Error(`${manifest.mapping}: HTTP ${resp.status}`);
      mapping = await resp.text();
    }
    performance.measure("safetyscope:fetched", { start: 0, end: performance.now() });
    await startSession(tables, names, files, mapping, manifest.timezone ?? null);
    performance.measure("safetyscope:first-render", { start: 0, end: performance.now() });
  } catch (e) {
    showError(String(e.message ?? e));
    $("status").dataset.state = "error";
  }
}

main();
