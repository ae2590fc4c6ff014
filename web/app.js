// The static dashboard: loads the data files listed in data/manifest.json
// (or carried inline by the single-file report), computes every view in the
// browser with safetyscope-wasm and draws it. Colours, vocabulary labels
// and decimals come from the core (`palettes()`), option defaults from its
// registry. Every string that comes from data is inserted with textContent.
import init, { Session, palettes, registry } from "./pkg/safetyscope_wasm.js";

const I18N = {
  zh: {
    title: "安全生产风险看板", site: "单位", from: "开始", to: "结束（含）", incidents: "事故/未遂", hazards: "隐患", violations: "违章",
    detail: "网格详情", validation: "数据校验", table: "表", read: "读取", accepted: "接受", rejected: "拒绝", quality: "数据质量",
    cell: "网格", zone: "区域", owner: "责任人", events: "事件数", injuries: "伤害", near: "未遂", lang: "English", legend: "颜色越深事件越多，最大值", unplaced: "不在平面图上的网格",
    view: "视图", kinds: "事件类型", v_risk: "风险四色图", v_events: "事件热力", v_hotspots: "热点分析", t_risk: "风险四色图", t_events: "事件热力图", t_hotspots: "热点分析（Getis-Ord Gi*）",
    score: "风险分值", level: "风险等级", trend: "趋势",
    risk_legend: "红 = 重大，橙 = 较大，黄 = 一般，蓝 = 低；▲ = 统计显著热点；数字为窗口内风险分值", hot_legend: "+3/+2/+1 热点（99/95/90% 置信），−1/−2/−3 冷点，0 不显著（FDR 校正）",
    when: "时段分布（小时 × 星期，事件数；粗框 = 显著高峰）", periods: "高风险时段（FDR 校正）", day: "星期", hours: "时段", ratio: "率比", expected: "期望", q: "q 值", none: "无显著高峰",
    days: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
    own: "打开自己的文件（按表命名，如 incidents.csv；可附映射 .toml）", zone_hour: "区域 × 小时（事件数）", all: "全部", category: "类型", severity: "严重度", recent: "最近事件", export_svg: "导出 SVG", export_png: "导出 PNG", export_csv: "导出 CSV",
    targets: "目标跟踪", alerts: "待办提醒", actual: "实际", target: "目标", projection: "全年预测", kind: "类别", subject: "对象", since: "起始", note: "说明", age: "已持续", level_step: "等级",
                        headline: "集团概况", ranking: "单位排名", ranking_hint: "按重大、较大风险网格数排序；点击单位查看其风险图", red_orange: "重大 / 较大网格", trir_short: "TRIR", alerts_open: "待办提醒",
    tile_red: "重大风险网格", tile_orange: "较大风险网格", tile_overdue: "逾期隐患", tile_trir: "TRIR（每 20 万工时）", tile_alerts: "待办提醒", of_cells: (n) => `共 ${n} 个网格`,
    target_is: (v) => `目标 ≤ ${v}`, meets: "达标", misses: "超标", window: (a, b, n) => `统计窗口：${a} 至 ${b}（${n} 天，所有视图相同）`,
    map_hint: "点击或用 Tab 键选中网格，查看“为什么是这个颜色”", panel_empty: "尚未选中网格", cell_label: (c, l, v) => `${c}，${l}，${v}；查看原因`,
    why: "为什么是这个颜色", source: "等级来源",     static_assessment: "固有风险评估", dynamic_evidence: "动态证据", rate_ratio: "率比（对比集团平均）", bands: "分级", evidence: "证据（加权）",
    open_hazards: "未整改隐患", overdue_hazards: "逾期隐患", alarms: "报警", intrusions: "闯入", rate: "每千工时", smoothed: "平滑后每千工时", exposure: "工时",
    previous: "上一窗口分值", change: "变化", hotspot: "热点分析", no_assessment: "无静态评估", z: "z 值", class: "类别",
    trend_title: (s, c) => `月度趋势：${s}${c ? " · " + c : ""}（对比上年同月）`, month: "月份", last_year: "上年同月", yoy: "同比",
    targets_scope: (d) => `集团口径目标，截至 ${d}（单位筛选不影响目标）`, alerts_for: (s, d) => `${s} 截至 ${d}`, show_all: (n) => `显示全部（${n} 条）`, show_top: "只显示前 10 条",
    days_n: (n) => `${n} 天`, overdue_days: (d) => `逾期 ${d} 天`, consecutive: (n) => `连续 ${n} 天违章`, inside_min: (n) => `在限制区域停留 ${n} 分钟`, peak_of: (p, l) => `峰值 ${p}（报警值 ${l}）`, points_of: (p, l) => `安全积分 ${p}（下限 ${l}）`,
    bad_window: "日期无效：开始日期不能晚于结束日期。已保留上一次的结果。", no_kind: "请至少选择一种事件类型。已保留上一次的结果。", failed: "计算失败，已保留上一次的结果：",
    kinds_risk: "风险四色图综合全部证据，不按事件类型筛选", left_out: (t) => `单文件报告不含以下数据以控制体积：${t}（闯入围栏提醒因此不显示）`,
    cells: "网格", exposure: "工时", activities: "安全活动", readings: "传感器读数", positions: "人员定位", thresholds: "报警阈值",
    unit_count: "", unit_ratio: "",     status_line: (n, ms) => `${n} 个网格 · ${ms} 毫秒`, loading: "加载中…", updating: "正在按新日期更新…",
    v_next: "下期预测", t_next: "下期预测：每个网格的期望伤害数", next_legend: (p) => `颜色越深，${p} 预期伤害越多；数字为期望值，点击网格查看预测区间和主要驱动因素`,
    period: "预测期", expected_n: "期望伤害数", interval: (l) => `${l}% 预测区间`, cell_level: "网格自身水平（1 = 与模型一致）", drivers: "主要驱动因素（对比平均网格的率比）", no_driver: "无高于平均的因素",
    backtest_line: (n, k, a, b, c) => `回测（过去 ${n} 个月逐月预测）：预测排名前 10% 的 ${k} 个网格捕获了 ${a} 的伤害，按上月计数选取为 ${b}，按长期均值为 ${c}。`,
  },
  en: {
    title: "Safety risk dashboard", site: "Unit", from: "From", to: "To (inclusive)", incidents: "Incidents", hazards: "Hazards", violations: "Violations",
    detail: "Cell details", validation: "Data validation", table: "Table", read: "Read", accepted: "Accepted", rejected: "Rejected", quality: "Data quality",
    cell: "Cell", zone: "Zone", owner: "Owner", events: "Events", injuries: "Injuries", near: "Near misses", lang: "中文", legend: "Darker = more events; maximum", unplaced: "Cells not on the plan",
    view: "View", kinds: "Event kinds", v_risk: "Risk map", v_events: "Events", v_hotspots: "Hot spots", t_risk: "Risk four-colour map", t_events: "Events per cell", t_hotspots: "Hot spots (Getis-Ord Gi*)",
    score: "Risk score", level: "Risk level", trend: "Trend",
    risk_legend: "Red = major, orange = high, yellow = moderate, blue = low; ▲ = significant hot spot; the number is the window's risk score", hot_legend: "+3/+2/+1 hot (99/95/90 %), −1/−2/−3 cold, 0 not significant (FDR-adjusted)",
    when: "When: events by hour × weekday (bold frame = significant peak)", periods: "High-risk periods (FDR-adjusted)", day: "Day", hours: "Hours", ratio: "Rate ratio", expected: "Expected", q: "q", none: "No significant peaks",
    days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    own: "Open your own files (named after the table, e.g. incidents.csv; optionally a mapping .toml)", zone_hour: "Zone × hour (events)", all: "All", category: "Category", severity: "Severity", recent: "Recent events", export_svg: "SVG", export_png: "PNG", export_csv: "CSV",
    targets: "Targets", alerts: "To chase", actual: "Actual", target: "Target", projection: "Year projection", kind: "Kind", subject: "Subject", since: "Since", note: "Detail", age: "Open for", level_step: "Step",
                        headline: "Group at a glance", ranking: "Units ranked", ranking_hint: "By major, then high-risk cells; choose a unit to open its map", red_orange: "Major / high cells", trir_short: "TRIR", alerts_open: "Open alerts",
    tile_red: "Major-risk cells", tile_orange: "High-risk cells", tile_overdue: "Overdue hazards", tile_trir: "TRIR (per 200,000 h)", tile_alerts: "Open alerts", of_cells: (n) => `of ${n} cells`,
    target_is: (v) => `target ≤ ${v}`, meets: "within", misses: "above", window: (a, b, n) => `Window: ${a} to ${b} (${n} days, every view)`,
    map_hint: "Click or Tab to a cell to see why it has its colour", panel_empty: "No cell selected", cell_label: (c, l, v) => `${c}, ${l}, ${v}; show why`,
    why: "Why this colour", source: "Level from",     static_assessment: "Fixed assessment", dynamic_evidence: "Current evidence", rate_ratio: "Rate ratio (vs group)", bands: "Bands", evidence: "Evidence (weighted)",
    open_hazards: "Open hazards", overdue_hazards: "Overdue hazards", alarms: "Alarms", intrusions: "Intrusions", rate: "Per 1,000 h", smoothed: "Smoothed per 1,000 h", exposure: "Hours worked",
    previous: "Previous window's score", change: "Change", hotspot: "Hot-spot analysis", no_assessment: "no fixed assessment", z: "z-score", class: "Class",
    trend_title: (s, c) => `Monthly trend: ${s}${c ? " · " + c : ""} (against the same month a year before)`, month: "Month", last_year: "Year before", yoy: "Change",
    targets_scope: (d) => `Group-wide targets as of ${d} (the unit choice does not apply)`, alerts_for: (s, d) => `${s} as of ${d}`, show_all: (n) => `Show all (${n})`, show_top: "Show the top 10",
    days_n: (n) => `${n} days`, overdue_days: (d) => `${d} days overdue`, consecutive: (n) => `violations on ${n} consecutive days`, inside_min: (n) => `${n} min inside a restricted cell`, peak_of: (p, l) => `peak ${p} (alarm at ${l})`, points_of: (p, l) => `safety points ${p} (floor ${l})`,
    bad_window: "Invalid dates: the start is after the end. The last result stays on screen.", no_kind: "Choose at least one event kind. The last result stays on screen.", failed: "The computation failed; the last result stays on screen: ",
    kinds_risk: "The risk map weighs every kind of evidence; it is not filtered by kind", left_out: (t) => `Left out of this single file to keep it small: ${t} (so no fence-intrusion alerts)`,
    cells: "Cells", exposure: "Hours worked", activities: "Safety activities", readings: "Sensor readings", positions: "Position fixes", thresholds: "Alarm thresholds",
    unit_count: "", unit_ratio: "",     status_line: (n, ms) => `${n} cells · ${ms} ms`, loading: "Loading…", updating: "Updating for the new dates…",
    v_next: "Next period", t_next: "Next period: expected injuries per cell", next_legend: (p) => `Darker = more injuries expected in ${p}; the number is the expected count. Choose a cell for its interval and main drivers`,
    period: "Forecast for", expected_n: "Expected injuries", interval: (l) => `${l} % prediction interval`, cell_level: "The cell's own level (1 = as the model says)", drivers: "Main drivers (rate ratio against the average cell)", no_driver: "nothing above the average cell",
    backtest_line: (n, k, a, b, c) => `Backtest (each of the last ${n} months predicted from the months before): the ${k} cells ranked top 10 % caught ${a} of the injuries, against ${b} for last month's counts and ${c} for the long-run mean.`,
  },
};
let lang = "zh";
let session = null;
let view = "risk";
// The colours, labels and decimals of the core, read once the module is loaded.
let PALETTE = { levels: {}, classes: {}, statuses: {}, inks: {}, labels: {}, decimals: {}, sequential: [[0, "#ffffe5"]] };
let RISK_DEFAULTS = {};
let FORECAST_DEFAULTS = {};
// What is on screen: the last computation that succeeded.
let shown = null;
let selected = null;
let showAllAlerts = false;
let leftOut = [];
const exportsOf = {};

const $ = (id) => document.getElementById(id);
const t = (k, ...a) => {
  const v = I18N[lang][k] ?? PALETTE.labels[k]?.[lang];
  return typeof v === "function" ? v(...a) : v ?? k;
};
// A vocabulary code in the UI language (the core's labels), else the code.
const label = (code) => code == null ? "—" : (I18N[lang][code] && typeof I18N[lang][code] === "string" ? I18N[lang][code] : PALETTE.labels[code]?.[lang] ?? code);
const ink = (hex) => PALETTE.inks[hex] ?? "#111";

// Numbers: the core's decimals per quantity, halves away from zero (as the
// core's charts round), grouped per locale.
function round(v, d) {
  const f = 10 ** d;
  const s = Number(String(Math.abs(v) * f));
  return Math.sign(v) * Math.round(s) / f;
}
function num(v, kind = "count") {
  if (v == null || Number.isNaN(v)) return "—";
  const d = PALETTE.decimals[kind] ?? 2;
  return new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-GB", { minimumFractionDigits: d, maximumFractionDigits: d }).format(round(v, d));
}
const pct = (v) => v == null ? "—" : `${num(v * 100, "percent")} %`;
const signedPct = (v) => v == null ? "—" : `${v > 0 ? "+" : v < 0 ? "−" : "±"}${num(Math.abs(v), "percent")} %`;
const qText = (q) => q == null ? "—" : q < 0.001 ? "< 0.001" : new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-GB", { maximumFractionDigits: 3 }).format(round(q, 3));
// Text in brackets and a list, punctuated per language.
const paren = (x) => lang === "zh" ? `（${x}）` : ` (${x})`;
const list = (xs) => xs.join(lang === "zh" ? "，" : ", ");
const arrow = (trend) => ({ up: "▲", down: "▼", flat: "▶", new: "●" })[trend] ?? "";
// A KPI value in its unit: ratios as percentages, counts whole.
function kpiValue(v, unit) {
  if (v == null) return "—";
  switch (unit) {
    case "ratio": return pct(v);
    case "count": return num(v, "count");
    case "per 200,000 h": return `${num(v, "rate")} ${label(unit)}`;
    case "h": case "min": case "per leader per month": case "per month": return `${num(v, "hours")} ${label(unit)}`;
    default: return num(v, "rate");
  }
}

// Dates: the boxes show an inclusive end, the core takes an exclusive one.
const dayMs = 86400000;
const addDays = (iso, n) => new Date(Date.parse(iso.slice(0, 10) + "T00:00:00Z") + n * dayMs).toISOString().slice(0, 10);
const spanDays = (a, b) => Math.round((Date.parse(b + "T00:00:00Z") - Date.parse(a + "T00:00:00Z")) / dayMs);

function showError(msg) {
  const box = $("error");
  box.textContent = msg;
  box.hidden = false;
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v; else e.setAttribute(k, v);
  }
  return e;
}

function applyLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  $("lang").textContent = t("lang");
  $("lang").lang = lang === "zh" ? "en" : "zh-CN";
  for (const id of ["zone", "category", "severity"]) for (const o of $(id).options) o.textContent = o.value ? label(o.value) : t("all");
  if (shown) drawAll(shown);
  else $("status").textContent = t("loading");
}

// The core's sequential ramp at v / max.
function color(v, max) {
  const x = max > 0 ? Math.min(1, Math.max(0, v / max)) : 0;
  const ramp = PALETTE.sequential;
  const bg = ramp[Math.min(ramp.length - 1, Math.round(x * (ramp.length - 1)))][1];
  return { bg, ink: ink(bg) };
}

// ---------------------------------------------------------------- overview

function drawHeadline(s) {
  const box = $("tiles");
  $("headline").setAttribute("aria-busy", String(!s.overview));
  $("overview").setAttribute("aria-busy", String(!s.overview));
  box.replaceChildren();
  $("headline-title").textContent = `${t("headline")} · ${s.from} – ${s.toIncl}`;
  if (!s.overview) { box.append(el("p", t("updating"), { class: "hint" })); return; }
  const g = s.overview.find((r) => r.scope === "group");
  if (!g) return;
  const cells = g.red_cells + g.orange_cells + g.yellow_cells + g.blue_cells;
  const tile = (key, value, sub, colour, field) => {
    const d = el("div", null, { class: "tile", "data-field": field, "data-value": String(g[field] ?? "") });
    if (colour) d.style.borderTopColor = colour;
    d.append(el("div", t(key), { class: "label" }), el("div", value, { class: "big" }), el("div", sub, { class: "sub" }));
    box.append(d);
  };
  tile("tile_red", num(g.red_cells), t("of_cells", num(cells)), PALETTE.levels.red, "red_cells");
  tile("tile_orange", num(g.orange_cells), t("of_cells", num(cells)), PALETTE.levels.orange, "orange_cells");
  tile("tile_overdue", num(g.overdue_hazards), "", null, "overdue_hazards");
  tile("tile_trir", num(g.trir, "rate"), g.trir_target == null ? "" : `${t("target_is", num(g.trir_target, "rate"))} · ${label(g.trir_status)}`, g.trir_status ? PALETTE.statuses[g.trir_status] : null, "trir");
  tile("tile_alerts", num(g.open_alerts), "", null, "open_alerts");
}

function drawUnits(s) {
  const body = $("units").querySelector("tbody");
  body.replaceChildren();
  if (!s.overview) return;
  for (const r of s.overview.filter((x) => x.scope === "site")) {
    const tr = el("tr", null, { "data-site": r.site, "data-rank": String(r.rank) });
    if (r.site === s.site) tr.className = "current";
    const b = el("button", r.site, { type: "button" });
    b.addEventListener("click", () => openUnit(r.site));
    const lv = el("td", null, { "data-level": r.level ?? "" });
    const chip = el("span", null, { class: "chip", "aria-hidden": "true" });
    chip.style.background = PALETTE.levels[r.level] ?? "#ccc";
    lv.append(chip, document.createTextNode(label(r.level)));
    const tr_ = el("td", `${arrow(r.trend)} ${label(r.trend)} ${signedPct(r.change_pct)}`, { class: r.trend === "up" ? "up" : r.trend === "down" ? "down" : "" });
    const trir = el("td", r.trir == null ? "—" : `${num(r.trir, "rate")}${r.trir_meets == null ? "" : r.trir_meets ? " ✓" : " ✗"}`, { title: r.trir_meets == null ? "" : r.trir_meets ? t("meets") : t("misses") });
    const cellB = el("td"); cellB.append(b);
    tr.append(el("td", r.rank), cellB, lv, el("td", `${num(r.red_cells)} / ${num(r.orange_cells)}`), el("td", num(r.score, "score")), tr_, trir, el("td", num(r.overdue_hazards)), el("td", num(r.open_alerts)));
    body.append(tr);
  }
}

function openUnit(site) {
  $("site").value = site;
  document.querySelector('#view input[value="risk"]').checked = true;
  view = "risk";
  selected = null;
  recompute().then(() => $("map-section").scrollIntoView({ block: "start" }));
}

// --------------------------------------------------------------------- map

function look(r, max) {
  if (view === "risk") {
    const bg = PALETTE.levels[r.level] ?? "#ccc";
    const hot = typeof r.hotspot === "string" && r.hotspot.startsWith("hot_");
    return { bg, tag: label(r.level) + (hot ? " ▲" : ""), value: num(r.score, "score"), desc: `${label(r.level)}, ${t("score")} ${num(r.score, "score")}`, attr: { level: r.level, value: String(r.score), hotspot: r.hotspot ?? "" } };
  }
  if (view === "hotspots") {
    const bg = PALETTE.classes[r.class] ?? "#f7f7f7";
    const c = r.confidence;
    return { bg, tag: "", value: c > 0 ? `+${c}` : String(c), desc: label(r.class), attr: { class: r.class, value: String(r.value) } };
  }
  if (view === "next") {
    const { bg } = color(r.expected, max);
    return { bg, tag: "", value: num(r.expected, "rate"), desc: `${t("expected_n")} ${num(r.expected, "rate")}`, attr: { value: String(r.expected) } };
  }
  const { bg } = color(r.events, max);
  return { bg, tag: "", value: num(r.events), desc: `${t("events")} ${num(r.events)}`, attr: { value: String(r.events) } };
}

function drawMap(s) {
  const grid = $("grid");
  grid.replaceChildren();
  const rows = s.map;
  const placed = rows.filter((r) => r.row !== null && r.row !== undefined);
  const max = Math.max(0, ...rows.map((r) => r.events ?? r.expected ?? 0));
  for (const r of placed) {
    const l = look(r, max);
    const b = el("button", null, { type: "button", class: "cell", "data-cell": r.cell });
    for (const [k, v] of Object.entries(l.attr)) b.dataset[k] = v;
    b.style.background = l.bg;
    b.style.color = ink(l.bg);
    b.style.gridRow = String(r.row + 1);
    b.style.gridColumn = String(r.col + 1);
    const short = r.cell.split("-").pop();
    b.title = `${r.cell} · ${t("owner")}: ${r.owner ?? "—"}`;
    b.setAttribute("aria-label", t("cell_label", r.cell, l.desc, `${t("owner")} ${r.owner ?? "—"}`));
    b.setAttribute("aria-pressed", String(r.cell === selected));
    if (r.cell === selected) b.classList.add("selected");
    b.append(el("span", short), el("span", l.value, { class: "value" }));
    if (l.tag) b.append(el("span", l.tag, { class: "tag" }));
    b.addEventListener("click", () => { selected = r.cell; drawMap(shown); drawPanel(shown); drawTrend(shown); });
    grid.append(b);
  }
  $("map-title").textContent = `${t(`t_${view}`)} · ${s.site} · ${s.from} – ${s.toIncl}`;
  $("legend").textContent = view === "risk" ? t("risk_legend") : view === "hotspots" ? t("hot_legend") : view === "next" ? t("next_legend", rows[0]?.period ?? "") : `${t("legend")} ${num(max)}`;
  drawBacktestLine(s);
  const un = $("unplaced");
  un.replaceChildren();
  const unplaced = rows.filter((r) => r.row === null || r.row === undefined);
  if (unplaced.length) un.append(el("p", `${t("unplaced")}: ` + unplaced.map((r) => `${r.cell ?? "?"} (${num(r.events ?? r.value ?? r.score, "score")})`).join(", ")));
}

// Under the next-period map: how often such forecasts came true for this
// unit, the model's top 10 % of cells against last month's counts.
function drawBacktestLine(s) {
  const line = $("backtest-line");
  line.hidden = view !== "next" || !s.backtest;
  if (line.hidden) return;
  const all = (m) => s.backtest.find((r) => r.method === m && r.origin === "all");
  const hit = (r) => pct(r?.hit_10);
  const model = all("model");
  const origins = new Set(s.backtest.map((r) => r.origin)).size - 1;
  line.textContent = t("backtest_line", num(origins), num(Math.ceil(0.1 * (model?.cells ?? 0) / Math.max(1, origins))), hit(model), hit(all("last_period")), hit(all("long_run_mean")));
  line.dataset.model = String(model?.hit_10 ?? "");
  line.dataset.lastPeriod = String(all("last_period")?.hit_10 ?? "");
}

// Band thresholds as text: "red > 320, orange > 160, yellow > 70".
function bandsText(table) {
  if (!table?.bands) return "";
  const op = table.boundary_above ? "≥" : ">";
  return list(table.bands.map(([v, l]) => `${label(l)} ${op} ${new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-GB", { maximumFractionDigits: 2 }).format(v)}`));
}

// The selected cell: its facts and, on the risk map, why it has its colour.
function drawPanel(s) {
  const dl = $("detail");
  dl.replaceChildren();
  const r = s.map.find((x) => x.cell === selected);
  $("panel-empty").hidden = Boolean(r);
  if (!r) return;
  const add = (k, v, field, raw) => {
    const dt = el("dt", t(k));
    const dd = el("dd", v == null ? "—" : v);
    if (field) { dd.dataset.field = field; dd.dataset.value = raw == null ? "" : String(raw); }
    dl.append(dt, dd);
  };
  const group = (k) => dl.append(el("dt", t(k), { class: "group" }));
  add("cell", r.cell, "cell", r.cell); add("zone", r.zone ?? "—", "zone", r.zone); add("owner", r.owner ?? "—", "owner", r.owner);
  if (view === "risk") {
    group("why");
    add("level", label(r.level), "level", r.level);
    add("source", label(r.level_source), "level_source", r.level_source);
    const method = r.static_method ? r.static_method.toUpperCase() : null;
    add("static_assessment", method ? `${method} ${r.static_method === "lec" ? "D" : "R"} = ${num(r.static_value, "score")} → ${label(r.static_level)}${paren(bandsText(RISK_DEFAULTS[`${r.static_method}_bands`]))}` : t("no_assessment"), "static_value", r.static_value);
    add("rate_ratio", `${num(r.ratio, "ratio")} → ${label(r.dynamic_level)}${paren(bandsText(RISK_DEFAULTS.dynamic_bands))}`, "ratio", r.ratio);
    add("previous", `${num(r.previous_score, "score")} → ${num(r.score, "score")}${paren(list([signedPct(r.change_pct), label(r.trend)]))}`, "previous_score", r.previous_score);
    add("hotspot", `${label(r.hotspot)}${r.hotspot_z == null ? "" : ` · z = ${num(r.hotspot_z, "z")}`}`, "hotspot", r.hotspot);
    group("evidence");
    add("score", num(r.score, "score"), "score", r.score);
    add("injuries", num(r.c_injuries, "hours"), "c_injuries", r.c_injuries);
    add("near", num(r.c_near_misses, "hours"), "c_near_misses", r.c_near_misses);
    add("open_hazards", num(r.c_open_hazards, "hours"), "c_open_hazards", r.c_open_hazards);
    add("overdue_hazards", num(r.c_overdue_hazards, "hours"), "c_overdue_hazards", r.c_overdue_hazards);
    add("violations", num(r.c_violations, "hours"), "c_violations", r.c_violations);
    add("alarms", num(r.c_alarms, "hours"), "c_alarms", r.c_alarms);
    add("intrusions", num(r.c_intrusions, "hours"), "c_intrusions", r.c_intrusions);
    add("exposure", `${num(r.hours, "count")} ${label("h")}`, "hours", r.hours);
    add("rate", num(r.rate_per_1000h, "rate"), "rate_per_1000h", r.rate_per_1000h);
    add("smoothed", num(r.smoothed_per_1000h, "rate"), "smoothed_per_1000h", r.smoothed_per_1000h);
  } else if (view === "next") {
    add("period", r.period, "period", r.period);
    add("expected_n", num(r.expected, "rate"), "expected", r.expected);
    dl.append(el("dt", t("interval", num(100 * FORECAST_DEFAULTS.level, "percent"))), el("dd", `${num(r.lower)} – ${num(r.upper)}`, { "data-field": "upper", "data-value": String(r.upper), "data-lower": String(r.lower) }));
    add("exposure", `${num(r.hours, "count")} ${label("h")}`, "hours", r.hours);
    add("cell_level", num(r.cell_level, "ratio"), "cell_level", r.cell_level);
    group("drivers");
    const drivers = [1, 2, 3].filter((k) => r[`driver_${k}`] != null);
    for (const k of drivers) {
      const dd = el("dd", `× ${num(r[`driver_${k}_ratio`], "ratio")}`, { "data-field": `driver_${k}`, "data-value": r[`driver_${k}`] });
      dl.append(el("dt", label(r[`driver_${k}`])), dd);
    }
    if (!drivers.length) dl.append(el("dd", t("no_driver")));
  } else if (view === "hotspots") {
    add("class", label(r.class), "class", r.class); add("z", num(r.z, "z"), "z", r.z); add("events", num(r.value), "value", r.value);
  } else {
    add("events", num(r.events), "events", r.events); add("incidents", num(r.incidents), "incidents", r.incidents); add("injuries", num(r.injuries), "injuries", r.injuries);
    add("near", num(r.near_misses), "near_misses", r.near_misses); add("hazards", num(r.hazards), "hazards", r.hazards); add("violations", num(r.violations), "violations", r.violations);
  }
  const recent = (s.recent[r.cell] ?? []).map((e) => `${e.occurred_at.slice(0, 16)} ${label(e.category)} ${label(e.severity)}`);
  add("recent", recent.length ? recent.join(" · ") : "—");
}

// -------------------------------------------------------------- the trend

function drawTrend(s) {
  const rows = selected && s.cellTrend?.cell === selected ? s.cellTrend.rows : s.trend;
  $("trend-title").textContent = t("trend_title", s.site, selected && s.cellTrend?.cell === selected ? selected : "");
  const body = $("months").querySelector("tbody");
  body.replaceChildren();
  // The year-before count and the change are the core's (`yoy_change`,
  // `yoy_pct`).
  const last = rows.filter((r) => r.month <= s.toIncl.slice(0, 7)).slice(-12);
  for (const r of last) {
    const tr = el("tr", null, { "data-month": r.month });
    const yoy = r.yoy_pct;
    tr.append(el("td", r.month), el("td", num(r.events)), el("td", r.yoy_change == null ? "—" : num(r.events - r.yoy_change)), el("td", signedPct(yoy), { class: yoy > 0 ? "up" : yoy < 0 ? "down" : "" }));
    body.append(tr);
  }
}

// ------------------------------------------------------ the time patterns

function drawWhen(p) {
  const m = $("when");
  m.replaceChildren();
  const head = el("tr");
  const corner = el("th");
  corner.append(el("span", `${t("day")} / ${t("hours")}`, { class: "sr" }));
  head.append(corner);
  for (let h = 0; h < 24; h++) head.append(el("th", h, { scope: "col" }));
  m.append(head);
  const max = Math.max(0, ...p.cells.map((c) => c.events));
  for (let d = 0; d < 7; d++) {
    const tr = el("tr");
    tr.append(el("th", t("days")[d], { scope: "row" }));
    for (let h = 0; h < 24; h++) {
      const c = p.cells.find((x) => x.weekday === d && x.hour === h);
      const v = c ? c.events : 0;
      const { bg, ink: fg } = color(v, max);
      const td = el("td", num(v), { "data-weekday": String(d), "data-hour": String(h) });
      td.style.background = bg; td.style.color = fg;
      if (c && c.significant && c.rate_ratio > 1) td.classList.add("peak");
      if (c) td.title = `${t("days")[d]} ${h}:00 · ${t("events")} ${num(v)} · ${t("expected")} ${num(c.expected, "hours")} · ${t("ratio")} ${num(c.rate_ratio, "ratio")} · q ${qText(c.q_value)}`;
      tr.append(td);
    }
    m.append(tr);
  }
  const body = $("periods").querySelector("tbody");
  body.replaceChildren();
  for (const r of p.periods) {
    const tr = el("tr");
    for (const v of [r.rank, t("days")[r.weekday] ?? "—", `${r.hour_from}:00–${r.hour_to}:00`, num(r.events), num(r.expected, "hours"), num(r.rate_ratio, "ratio"), qText(r.q_value)]) tr.append(el("td", v));
    body.append(tr);
  }
  if (!p.periods.length) { const tr = el("tr"); const td = el("td", t("none")); td.colSpan = 7; tr.append(td); body.append(tr); }
}

function drawZoneHour(rows) {
  const m = $("zonehour");
  m.replaceChildren();
  const zones = [...new Set(rows.filter((r) => r.hour != null).map((r) => r.zone ?? "—"))].sort();
  const sum = {};
  for (const r of rows) if (r.hour != null) sum[`${r.zone ?? "—"}|${r.hour}`] = (sum[`${r.zone ?? "—"}|${r.hour}`] ?? 0) + r.events;
  const max = Math.max(0, ...Object.values(sum));
  const head = el("tr");
  const corner = el("th");
  corner.append(el("span", `${t("day")} / ${t("hours")}`, { class: "sr" }));
  head.append(corner);
  for (let h = 0; h < 24; h++) head.append(el("th", h, { scope: "col" }));
  m.append(head);
  for (const z of zones) {
    const tr = el("tr");
    tr.append(el("th", z, { scope: "row" }));
    for (let h = 0; h < 24; h++) {
      const v = sum[`${z}|${h}`] ?? 0;
      const { bg, ink: fg } = color(v, max);
      const td = el("td", num(v), { "data-zone": z, "data-hour": String(h) });
      td.style.background = bg; td.style.color = fg;
      tr.append(td);
    }
    m.append(tr);
  }
}

// ------------------------------------------------------ targets and alerts

function drawTargets(s) {
  const box = $("cards");
  box.replaceChildren();
  $("targets-scope").textContent = t("targets_scope", s.toIncl);
  for (const r of s.targets) {
    const card = el("div", null, { class: "card", "data-kpi": r.kpi, "data-period": r.period, "data-status": r.status, "data-actual": String(r.actual ?? "") });
    card.style.borderLeftColor = PALETTE.statuses[r.status] ?? "#bdbdbd";
    const h = el("h3", `${label(r.kpi)} · ${r.period}`);
    const v = el("p", `${t("actual")} ${kpiValue(r.actual, r.unit)} / ${t("target")} ${r.direction === "at_most" ? "≤" : "≥"} ${kpiValue(r.effective_target, r.unit)}`, { class: "value" });
    const p = el("p", `${t("projection")} ${kpiValue(r.projection, r.unit)}`);
    const st = el("p", label(r.status), { class: "status" });
    const bg = PALETTE.statuses[r.status] ?? "#bdbdbd";
    st.style.background = bg; st.style.color = ink(bg);
    card.append(h, v, p, st);
    box.append(card);
  }
}

function alertText(r) {
  switch (r.kind) {
    case "overdue_hazard": return t("overdue_days", num(r.amount / 24, "days"));
    case "repeat_violation": return t("consecutive", num(r.amount));
    case "fence_intrusion": return t("inside_min", num(r.amount));
    case "sensor_alarm": return t("peak_of", num(r.amount, "ratio"), num(r.limit, "ratio"));
    case "low_points": return t("points_of", num(r.amount), num(r.limit));
    default: return r.detail ?? "—";
  }
}

function drawAlerts(s) {
  const kind = $("alert-kind").value;
  const counts = $("alert-counts");
  counts.replaceChildren();
  const by = {};
  for (const r of s.alerts) by[r.kind] = (by[r.kind] ?? 0) + 1;
  for (const [k, n] of Object.entries(by)) counts.append(el("span", `${label(k)} ${num(n)}`, { class: "pill", "data-kind": k }));
  const rows = s.alerts.filter((r) => !kind || r.kind === kind)
    .sort((a, b) => (b.urgency - a.urgency) || ((b.age_days ?? 0) - (a.age_days ?? 0)));
  const body = $("alerts").querySelector("tbody");
  body.replaceChildren();
  for (const r of showAllAlerts ? rows : rows.slice(0, 10)) {
    const tr = el("tr", null, { "data-kind": r.kind, "data-urgency": String(r.urgency) });
    for (const v of [label(r.kind), r.subject, r.cell ?? "—", r.cell_owner ?? r.owner ?? "—", r.age_days == null ? "—" : t("days_n", num(r.age_days, "days")), label(r.level), alertText(r)]) tr.append(el("td", v ?? "—"));
    body.append(tr);
  }
  const more = $("alerts-all");
  more.hidden = rows.length <= 10;
  more.textContent = showAllAlerts ? t("show_top") : t("show_all", num(rows.length));
  $("alerts-title").textContent = `${t("alerts")} · ${t("alerts_for", s.site, s.toIncl)}`;
  exportsOf.alerts = { svg: "", rows };
}

function fillAlertKinds(s) {
  const sel = $("alert-kind");
  const keep = sel.value;
  sel.replaceChildren(el("option", t("all"), { value: "" }));
  for (const k of ["overdue_hazard", "repeat_violation", "fence_intrusion", "sensor_alarm", "low_points"]) sel.append(el("option", label(k), { value: k }));
  sel.value = keep;
}

function showValidation(report) {
  const body = $("validation").querySelector("tbody");
  body.replaceChildren();
  for (const [name, tr] of Object.entries(report.tables)) {
    const row = el("tr");
    const rejected = Object.values(tr.rejected).reduce((a, r) => a + r.count, 0);
    row.dataset.table = name;
    for (const v of [label(name), num(tr.rows_read), num(tr.rows_accepted), num(rejected)]) row.append(el("td", v));
    body.append(row);
  }
  $("left-out").textContent = leftOut.length ? t("left_out", list(leftOut.map(label))) : "";
  $("left-out").dataset.tables = leftOut.join(",");
}

// The zone choices: the zones of the unit's cells (the choice is kept
// when the unit has it).
function fillZones(s) {
  const zones = [...new Set(s.map.map((r) => r.zone).filter((z) => z != null))].sort();
  const sel = $("zone");
  const have = [...sel.options].map((o) => o.value).filter((v) => v);
  if (zones.join("\u0000") === have.join("\u0000")) return;
  const keep = sel.value;
  sel.replaceChildren(el("option", t("all"), { value: "" }), ...zones.map((z) => el("option", label(z), { value: z })));
  sel.value = zones.includes(keep) ? keep : "";
}

function drawAll(s) {
  fillZones(s);
  drawHeadline(s);
  drawUnits(s);
  drawMap(s);
  drawPanel(s);
  drawTrend(s);
  drawWhen(s.peaks);
  drawZoneHour(s.zonehour);
  drawTargets(s);
  fillAlertKinds(s);
  drawAlerts(s);
  const kindsOff = view === "risk" || view === "next";
  $("kinds").disabled = kindsOff;
  $("kinds").title = kindsOff ? t("kinds_risk") : "";
  $("window-note").textContent = t("window", s.from, s.toIncl, spanDays(s.from, s.to));
  $("print-title").textContent = `· ${s.site} · ${s.from} – ${s.toIncl}`;
  $("status").textContent = t("status_line", num(s.map.length), num(s.ms));
  showValidation(s.validation);
}

// -------------------------------------------------------------- exporting

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

// The core's chart with its title in the UI language.
function titled(svg, title) {
  if (!svg) return svg;
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  const root = doc.documentElement;
  root.setAttribute("aria-label", title);
  const first = root.querySelector("text");
  if (first) first.textContent = title;
  return new XMLSerializer().serializeToString(root);
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

const EXPORT_TITLES = { map: () => t(`t_${view}`), when: () => t("when"), zonehour: () => t("zone_hour"), targets: () => t("targets"), alerts: () => t("alerts"), trend: () => t("trend_title", shown.site, "") };

async function exportSection(section, kind) {
  const e = exportsOf[section];
  if (!e || !shown) return;
  const name = `safetyscope-${section}-${shown.site}-${shown.from}_${shown.toIncl}`;
  const svg = titled(e.svg, `${EXPORT_TITLES[section]()} · ${shown.site} · ${shown.from} – ${shown.toIncl}`);
  if (kind === "csv") download(`${name}.csv`, new Blob([csvOf(e.rows)], { type: "text/csv;charset=utf-8" }));
  else if (kind === "svg" && svg) download(`${name}.svg`, new Blob([svg], { type: "image/svg+xml" }));
  else if (kind === "png" && svg) download(`${name}.png`, await svgToPng(svg));
}

// ------------------------------------------------------------- computing

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
const run = (name, o) => JSON.parse(session.run(name, JSON.stringify(o)));

// Compute every view for the controls' state; on any error the screen keeps
// the last good result and the message is shown in the UI language.
async function recompute() {
  if (!session) return;
  const status = $("status");
  const t0 = performance.now();
  const from = $("from").value, toIncl = $("to").value;
  if (!from || !toIncl || from > toIncl) { showError(t("bad_window")); status.dataset.state = "error"; return; }
  const kinds = [...document.querySelectorAll("#kinds input:checked")].map((i) => i.value);
  if (view !== "risk" && !kinds.length) { showError(t("no_kind")); status.dataset.state = "error"; return; }
  status.dataset.state = "computing";
  const site = $("site").value;
  try {
    const to = addDays(toIncl, 1);
    const s = { from, to, toIncl, site, validation: shown?.validation ?? JSON.parse(session.validation()) };
    // The overview covers every unit: when the dates change it is computed
    // after the unit's views are drawn (its sections say they are updating).
    const ovKey = `overview|${from}|${to}`;
    s.overview = results.get(ovKey) ?? null;
    // Charts (the exports) are drawn by the core in the page's language.
    const w = { site, from, to, lang };
    const out = timed("map", () => view === "next" ? cached(`forecast|${site}|${to}|${lang}`, () => run("forecast", { site, to, lang })) : view === "risk" ? run("risk", w) : view === "hotspots" ? run("hotspots", { ...w, kinds }) : run("heatmap", { ...w, kinds }));
    s.map = view === "next" ? out.rows.filter((r) => r.scope === "cell") : out.rows;
    s.backtest = view === "next" ? cached(`backtest|${site}|${to}`, () => timed("backtest", () => run("backtest", { site, to }).rows)) : null;
    s.mapSvg = out.svg;
    // A zone the unit does not have falls back to all zones.
    const unitZones = new Set(s.map.map((r) => r.zone));
    const z = unitZones.has($("zone").value) ? $("zone").value : "", c = $("category").value, sv = $("severity").value;
    const po = { kinds: kinds.length ? kinds : ["incidents"], site, from, to, zone: z || null, categories: c ? [c] : [], severities: sv ? [sv] : [], lang };
    const pk = timed("peaks", () => JSON.parse(session.peaks(JSON.stringify(po))));
    s.peaks = { cells: pk.cells, periods: pk.periods, svg: pk.svg };
    const zh = timed("zonehour", () => JSON.parse(session.patterns("profile", JSON.stringify({ ...po, by: ["zone"] }))));
    s.zonehour = zh.rows; s.zonehourSvg = zh.svg;
    const tr = cached(`trend|${site}|${to}|${lang}`, () => timed("trends", () => run("trends", { kinds: ["incidents"], site, to, lang })));
    s.trend = tr.rows; s.trendSvg = tr.svg;
    if (selected) {
      const ct = cached(`trend|${site}|${selected}|${to}`, () => run("trends", { kinds: ["incidents"], site, cell: selected, to }));
      s.cellTrend = { cell: selected, rows: ct.rows };
    }
    const recent = cached(`recent|${site}|${from}|${to}`, () => run("patterns", { view: "shift_events", kinds: ["incidents"], site, from, to }).rows);
    s.recent = {};
    for (const e of recent) (s.recent[e.cell] ??= []).push(e);
    for (const k of Object.keys(s.recent)) s.recent[k] = s.recent[k].slice(-5).reverse();
    const tt = cached(`targets|${to}|${lang}`, () => timed("targets", () => run("targets", { as_of: to, lang })));
    s.targets = tt.rows; s.targetsSvg = tt.svg;
    s.alerts = cached(`alerts|${site}|${to}`, () => timed("alerts", () => JSON.parse(session.alerts("all", JSON.stringify({ site, as_of: to }))).rows));
    const t1 = performance.now();
    s.ms = Math.round(t1 - t0);
    if (selected && !s.map.some((r) => r.cell === selected)) selected = null;
    shown = s;
    exportsOf.map = { svg: s.mapSvg, rows: s.map };
    exportsOf.when = { svg: s.peaks.svg, rows: s.peaks.cells };
    exportsOf.zonehour = { svg: s.zonehourSvg, rows: s.zonehour };
    exportsOf.targets = { svg: s.targetsSvg, rows: s.targets };
    exportsOf.trend = { svg: s.trendSvg, rows: s.trend };
    drawAll(s);
    $("error").hidden = true;
    // User Timing entries: visible in the browser's performance tools and
    // read by the dashboard benchmark (bench/bench_dashboard.py).
    performance.measure("safetyscope:recompute", { start: t0, end: performance.now() });
    if (s.overview) {
      status.dataset.state = "ready";
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
    const t2 = performance.now();
    const ov = cached(ovKey, () => timed("overview", () => run("overview", { from, to }).rows));
    if (shown !== s) return;
    s.overview = ov;
    drawHeadline(s);
    drawUnits(s);
    performance.measure("safetyscope:overview-update", { start: t2, end: performance.now() });
    status.dataset.state = "ready";
  } catch (e) {
    showError(t("failed") + String(e.message ?? e));
    status.dataset.state = "error";
  }
}

// Load files into a new session and fill the choices from the data. On a
// bad file the error names it and the previous session stays in place.
async function startSession(tables, names, files, mapping, timezone) {
  const t0 = performance.now();
  const next = Session.load(tables, names, files, mapping, timezone);
  performance.measure("safetyscope:load", { start: t0, end: performance.now() });
  // The default window is the core's (the risk map's); the page starts on
  // the unit ranked first.
  const ov = timed("overview", () => JSON.parse(next.run("overview", "{}")).rows);
  session = next;
  results = new Map();
  // The page's first window is the overview's: reuse it.
  if (ov.length) results.set(`overview|${ov[0].from.slice(0, 10)}|${ov[0].to.slice(0, 10)}`, ov);
  shown = null;
  selected = null;
  // Without a site plan the units come from the events, most first.
  let sites = ov.filter((r) => r.scope === "site").map((r) => r.site);
  if (!sites.length) {
    const bySite = JSON.parse(next.heatmap(JSON.stringify({ kinds: ["incidents"], by: "site" }))).rows;
    sites = bySite.filter((r) => r.site != null).sort((a, b) => b.events - a.events || (a.site < b.site ? -1 : 1)).map((r) => r.site);
  }
  $("site").replaceChildren(...sites.map((x) => el("option", x, { value: x })));
  if (sites.length) $("site").value = sites[0];
  $("from").value = ov[0].from.slice(0, 10);
  $("to").value = addDays(ov[0].to.slice(0, 10), -1);
  for (const id of ["zone", "category", "severity"]) $(id).replaceChildren(el("option", t("all"), { value: "" }));
  // Zones: those of the chosen unit's plan, filled as its map is drawn;
  // the categories once the first views are drawn (fillChoices).
  for (const v of SEVERITIES) $("severity").append(el("option", label(v), { value: v }));
  applyLang();
  await recompute();
}

const SEVERITIES = ["near_miss", "first_aid", "minor", "serious", "fatal"];

// The event categories of the data, most frequent first: filled after the
// first views are drawn (the list is closed until then).
function fillChoices() {
  if (!session) return;
  const pareto = timed("choices", () => JSON.parse(session.patterns("pareto", JSON.stringify({ kinds: ["incidents"] }))).rows);
  for (const c of pareto.map((r) => r.category).filter((c) => c != null)) $("category").append(el("option", label(c), { value: c }));
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
  try {
    leftOut = [];
    await startSession(tables, names, files, mapping, null);
    fillChoices();
  } catch (e) {
    showError(t("failed") + String(e.message ?? e));
    $("status").dataset.state = "error";
  }
}

async function inflate(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// The site's data: its manifest, every file it lists (downloaded at once)
// and the mapping, if any.
async function fetchData() {
  const get = async (url) => {
    const resp = await fetch(url);
    if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
    return resp;
  };
  const manifest = await (await get("data/manifest.json")).json();
  const [files, mapping] = await Promise.all([
    Promise.all(manifest.files.map(async (f) => new Uint8Array(await (await get(f.file)).arrayBuffer()))),
    manifest.mapping ? get(manifest.mapping).then((r) => r.text()) : null,
  ]);
  return { manifest, files, mapping };
}

async function main() {
  $("status").textContent = t("loading");
  // The page's words change at once; the charts behind the exports are
  // drawn again in the new language.
  $("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; applyLang(); recompute(); });
  $("own-files").addEventListener("change", (e) => loadOwnFiles([...e.target.files]));
  document.body.addEventListener("dragover", (e) => e.preventDefault());
  document.body.addEventListener("drop", (e) => { e.preventDefault(); loadOwnFiles([...e.dataTransfer.files]); });
  for (const b of document.querySelectorAll("button[data-export]")) {
    b.addEventListener("click", () => exportSection(b.dataset.section, b.dataset.export).catch((e) => showError(t("failed") + String(e.message ?? e))));
  }
  for (const e of document.querySelectorAll("#filters select, #filters input, #view input, #kinds input, #patterns select")) e.addEventListener("change", () => {
    view = document.querySelector("#view input:checked").value;
    recompute();
  });
  $("alert-kind").addEventListener("change", () => { showAllAlerts = false; if (shown) drawAlerts(shown); });
  $("alerts-all").addEventListener("click", () => { showAllAlerts = !showAllAlerts; if (shown) drawAlerts(shown); });
  try {
    // A single-file report carries the module (gzipped) and the data inline.
    const inline = document.getElementById("safetyscope-data");
    const bundle = inline ? JSON.parse(inline.textContent) : null;
    const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    // The data files download while the module compiles.
    const fetched = bundle ? null : fetchData();
    // A failed download is reported once the module is ready (below).
    fetched?.catch(() => {});
    if (bundle) await init({ module_or_path: await inflate(bundle.wasm_gzip) });
    else await init();
    PALETTE = JSON.parse(palettes());
    const analyses = JSON.parse(registry());
    for (const o of analyses.find((a) => a.name === "risk").options) RISK_DEFAULTS[o.name] = o.default;
    for (const o of analyses.find((a) => a.name === "forecast").options) FORECAST_DEFAULTS[o.name] = o.default;
    performance.measure("safetyscope:init", { start: 0, end: performance.now() });
    const { manifest, files, mapping } = bundle
      ? { manifest: bundle, files: bundle.files.map((f) => b64(f.b64)), mapping: bundle.mapping_text ?? null }
      : await fetched;
    leftOut = bundle?.left_out ?? [];
    const tables = manifest.files.map((f) => f.table), names = manifest.files.map((f) => f.file);
    performance.measure("safetyscope:fetched", { start: 0, end: performance.now() });
    await startSession(tables, names, files, mapping, manifest.timezone ?? null);
    performance.measure("safetyscope:first-render", { start: 0, end: performance.now() });
    fillChoices();
  } catch (e) {
    showError(t("failed") + String(e.message ?? e));
    $("status").dataset.state = "error";
  }
}

main();
