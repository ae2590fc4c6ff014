// Run analyses of the registry in the WASM module under node: load the
// sample's canonical Parquet files into a Session and print, as JSON, the
// registry and each analysis's rows and chart.
//
// usage: node run_wasm.mjs PKG_DIR SAMPLE_DIR NAME [NAME ...]
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, sample, ...names] = process.argv.slice(2);
const mod = await import(pathToFileURL(join(pkg, "safetyscope_wasm.js")).href);
mod.initSync({ module: readFileSync(join(pkg, "safetyscope_wasm_bg.wasm")) });
const tables = [], files = [], bytes = [];
for (const f of readdirSync(sample).sort()) {
  if (!f.endsWith(".parquet")) continue;
  tables.push(f.replace(/\.parquet$/, ""));
  files.push(f);
  bytes.push(new Uint8Array(readFileSync(join(sample, f))));
}
let mapping = null;
try { mapping = readFileSync(join(sample, "dataset.toml"), "utf8"); } catch { /* none */ }
const session = mod.Session.load(tables, files, bytes, mapping, null);
const out = { registry: JSON.parse(mod.registry()), results: {} };
for (const name of names) {
  // The text as the module returns it (JSON.parse would print 91.0 as 91).
  out.results[name] = session.run(name, "{}");
}
process.stdout.write(JSON.stringify(out));
