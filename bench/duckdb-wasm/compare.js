// The hour × weekday count of the same incidents, in one page:
// safetyscope's WASM module (load + validate, then the profile) from the
// Parquet file and from an Arrow IPC stream of the same table, and
// DuckDB-WASM from the IPC stream (DuckDB-WASM reads Parquet only through an
// extension it downloads from extensions.duckdb.org, out of reach offline):
// table from the stream, then GROUP BY. Local time: the dataset's
// Asia/Shanghai, UTC+8 all year; incidents whose time of day is unknown
// (`time_known = false`, recorded at local midnight) have no hour.
import init, { Session } from "./pkg/safetyscope_wasm.js";
import * as duckdb from "@duckdb/duckdb-wasm";

const RUNS = 5;
const get = async (p) => new Uint8Array(await (await fetch(p)).arrayBuffer());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = async (f) => { const t = performance.now(); const r = await f(); return [performance.now() - t, r]; };

async function main() {
  const out = {};
  const inc = await get("data/incidents.parquet");
  const ipc = await get("data/incidents.arrows");
  const cells = await get("data/cells.parquet");
  out.parquet_bytes = inc.length;
  out.ipc_bytes = ipc.length;

  await init();
  let ms, session, profile;
  for (const [name, file, bytes] of [["parquet", "incidents.parquet", inc], ["ipc", "incidents.arrows", ipc]]) {
    [ms, session] = await time(() => Session.load(["cells", "incidents"], ["cells.parquet", file], [cells, bytes.slice()], null, "Asia/Shanghai"));
    out[`safetyscope_load_${name}_ms`] = ms;
    if (name === "ipc") session.free();
  }
  [ms, session] = await time(() => Session.load(["cells", "incidents"], ["cells.parquet", "incidents.parquet"], [cells, inc.slice()], null, "Asia/Shanghai"));
  const ours = [];
  for (let i = 0; i < RUNS; i++) {
    [ms, profile] = await time(() => JSON.parse(session.patterns("profile", JSON.stringify({ kinds: ["incidents"] }))));
    ours.push(ms);
  }
  out.safetyscope_profile_ms = ours;

  const dist = new URL("node_modules/@duckdb/duckdb-wasm/dist/", location.href).href;
  const worker = new Worker(dist + "duckdb-browser-eh.worker.js");
  const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
  [ms] = await time(() => db.instantiate(dist + "duckdb-eh.wasm"));
  out.duckdb_instantiate_ms = ms;
  const c = await db.connect();
  [ms] = await time(() => c.insertArrowFromIPCStream(ipc.slice(), { name: "inc" }));
  out.duckdb_load_ipc_ms = ms;
  const local = "(epoch_us(occurred_at) + 28800000000)";
  const sql = `SELECT ((${local} // 86400000000 + 3) % 7)::INT AS weekday, ((${local} // 3600000000) % 24)::INT AS hour, count(*)::INT AS n FROM inc WHERE time_known IS DISTINCT FROM false GROUP BY ALL`;
  const xs = [];
  let res;
  for (let i = 0; i < RUNS; i++) { [ms, res] = await time(() => c.query(sql)); xs.push(ms); }
  out.duckdb_group_by_ms = xs;
  out.duckdb_rows = res.toArray().map((r) => r.toJSON());
  // Same counts per cell of the week.
  const theirs = new Map(out.duckdb_rows.map((r) => [`${r.weekday}-${r.hour}`, r.n]));
  const mine = new Map();
  for (const r of profile.rows) if (r.weekday != null && r.hour != null) mine.set(`${r.weekday}-${r.hour}`, r.events);
  out.cells_compared = mine.size;
  out.differences = [...mine].filter(([k, v]) => theirs.get(k) !== v).slice(0, 5).map(([k, v]) => ({ cell: k, safetyscope: v, duckdb: theirs.get(k) ?? null }));
  out.equal = mine.size === theirs.size && out.differences.length === 0;
  delete out.duckdb_rows;
  for (const k of ["safetyscope_profile_ms", "duckdb_group_by_ms"]) out[k.replace("_ms", "_median_ms")] = median(out[k]);
  return out;
}

main()
  .then((r) => { window.__result = r; })
  .catch((e) => { window.__result = { error: String(e && e.stack ? e.stack : e) }; })
  .finally(() => { document.getElementById("out").textContent = JSON.stringify(window.__result, null, 2); document.body.dataset.done = "1"; });
