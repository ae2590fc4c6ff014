// The static dashboard: loads the data files listed in data/manifest.json,
// computes the heat map in the browser with safetyscope-wasm and draws it.
// Every string that comes from data is inserted with textContent.
import init, { Session } from "./pkg/safetyscope_wasm.js";

const I18N = {
  zh: { title: "安全生产风险看板", site: "单位", from: "开始", to: "结束", incidents: "事故/未遂", hazards: "隐患", violations: "违章",
        map: "事件热力图（按网格）", detail: "网格详情", validation: "数据校验", table: "表", read: "读取", accepted: "接受", rejected: "拒绝",
        cell: "网格", zone: "区域", owner: "责任人", events: "事件数", injuries: "伤害", near: "未遂", lang: "English", legend: "颜色越深事件越多，最大值", unplaced: "不在平面图上的网格" },
  en: { title: "Safety risk dashboard", site: "Site", from: "From", to: "To", incidents: "Incidents", hazards: "Hazards", violations: "Violations",
        map: "Events per grid cell", detail: "Cell details", validation: "Data validation", table: "Table", read: "Read", accepted: "Accepted", rejected: "Rejected",
        cell: "Cell", zone: "Zone", owner: "Owner", events: "Events", injuries: "Injuries", near: "Near misses", lang: "中文", legend: "Darker = more events; maximum", unplaced: "Cells not on the plan" },
};
let lang = "zh";
let session = null;
let lastRows = [];

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
}

function color(v, max) {
  const x = max > 0 ? v / max : 0;
  const stops = [[255, 255, 229], [254, 227, 145], [254, 153, 41], [217, 95, 14], [153, 52, 4]];
  const p = Math.min(3.999, x * 4), i = Math.floor(p), f = p - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return { bg: `rgb(${c.join(",")})`, ink: (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) > 140 ? "#111" : "#fff" };
}

function draw(rows) {
  const grid = $("grid");
  grid.replaceChildren();
  const placed = rows.filter((r) => r.row !== null && r.row !== undefined);
  const max = Math.max(0, ...rows.map((r) => r.events));
  for (const r of placed) {
    const div = document.createElement("div");
    div.className = "cell";
    div.dataset.cell = r.cell;
    div.dataset.value = String(r.events);
    const { bg, ink } = color(r.events, max);
    div.style.background = bg;
    div.style.color = ink;
    div.style.gridRow = String(r.row + 1);
    div.style.gridColumn = String(r.col + 1);
    div.title = `${r.cell} · ${t("owner")}: ${r.owner ?? "—"}`;
    const label = document.createElement("span");
    label.textContent = r.cell.split("-").pop();
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = String(r.events);
    div.append(label, value);
    div.addEventListener("click", () => select(r, div));
    grid.append(div);
  }
  $("legend").textContent = `${t("legend")} ${max}`;
  const un = $("unplaced");
  un.replaceChildren();
  const unplaced = rows.filter((r) => r.row === null || r.row === undefined);
  if (unplaced.length) {
    const p = document.createElement("p");
    p.textContent = `${t("unplaced")}: ` + unplaced.map((r) => `${r.cell ?? "?"} (${r.events})`).join(", ");
    un.append(p);
  }
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
  add("cell", r.cell); add("zone", r.zone); add("owner", r.owner); add("events", r.events);
  add("incidents", r.incidents); add("injuries", r.injuries); add("near", r.near_misses); add("hazards", r.hazards); add("violations", r.violations);
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

async function recompute() {
  if (!session) return;
  const status = $("status");
  status.dataset.state = "computing";
  const t0 = performance.now();
  try {
    const out = JSON.parse(session.heatmap(JSON.stringify(options())));
    lastRows = out.rows;
    draw(lastRows);
    $("error").hidden = true;
    status.textContent = `${lastRows.length} cells · ${Math.round(performance.now() - t0)} ms`;
    status.dataset.state = "ready";
  } catch (e) {
    showError(String(e.message ?? e));
    status.dataset.state = "error";
  }
}

async function main() {
  $("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; applyLang(); });
  for (const el of document.querySelectorAll("#filters select, #filters input")) el.addEventListener("change", recompute);
  try {
    await init();
    const manifest = await (await fetch("data/manifest.json")).json();
    const tables = [], names = [], files = [];
    for (const f of manifest.files) {
      const resp = await fetch(f.file);
      if (!resp.ok) throw new Error(`${f.file}: HTTP ${resp.status}`);
      tables.push(f.table); names.push(f.file); files.push(new Uint8Array(await resp.arrayBuffer()));
    }
    session = Session.load(tables, names, files, null, manifest.timezone ?? null);
    showValidation(JSON.parse(session.validation()));
    const all = JSON.parse(session.heatmap(JSON.stringify({ kinds: ["incidents"] })));
    const sites = [...new Set(all.rows.map((r) => r.site))].sort();
    for (const s of sites) {
      const o = document.createElement("option"); o.value = s; o.textContent = s; $("site").append(o);
    }
    applyLang();
    await recompute();
  } catch (e) {
    showError(String(e.message ?? e));
    $("status").dataset.state = "error";
  }
}

main();
