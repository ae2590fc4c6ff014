"""In-browser aggregation side by side: safetyscope's WASM module and
DuckDB-WASM (from npm) on the same incidents Parquet file, in one page of
headless Chromium.

    python bench/bench_duckdb_wasm.py --pkg build/pkg-release \\
        --data /tmp/bench-dashboard/data-13.5

`bench/duckdb-wasm/compare.js` times safetyscope's load (read + validate
into the engine) from the Parquet file and from an Arrow IPC stream of the
same table, and its hour × weekday profile; DuckDB-WASM's instantiation,
its load of the IPC stream and the same GROUP BY (median of 5 each); and
checks that both count the same incidents in every hour of the week.
DuckDB-WASM reads Parquet only through an extension it downloads at run
time from extensions.duckdb.org, which an offline machine cannot reach.
DuckDB-WASM is installed with `npm install` into bench/duckdb-wasm
(`package.json` pins the version).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent / "duckdb-wasm"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
    }

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pkg", required=True, help="wasm-bindgen output directory of safetyscope-wasm")
    ap.add_argument("--data", required=True, help="directory with incidents.parquet and cells.parquet")
    a = ap.parse_args()

    if not (HERE / "node_modules" / "@duckdb" / "duckdb-wasm").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = pathlib.Path(tmp)
        for f in ("compare.html", "compare.js"):
            shutil.copy(HERE / f, site / f)
        (site / "node_modules").symlink_to(HERE / "node_modules")
        shutil.copytree(a.pkg, site / "pkg")
        (site / "data").mkdir()
        for t in ("incidents", "cells"):
            shutil.copy(pathlib.Path(a.data) / f"{t}.parquet", site / "data" / f"{t}.parquet")
        # The same table as an Arrow IPC stream, which DuckDB-WASM reads
        # without downloading an extension.
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pathlib.Path(a.data) / "incidents.parquet")
        with pa.ipc.new_stream(str(site / "data" / "incidents.arrows"), table.schema) as w:
            w.write_table(table)

        handler = functools.partial(_Quiet, directory=str(site))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"],
            )
            page = browser.new_page()
            page.on("console", lambda m: print("console:", m.text))
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/compare.html")
            end = time.monotonic() + 600
            while time.monotonic() < end and not page.evaluate("() => document.body.dataset.done === '1'"):
                page.wait_for_timeout(100)
            result = page.evaluate("() => window.__result")
            browser.close()
        httpd.shutdown()
    print(json.dumps(result, indent=2))
    if not result or "error" in result or not result.get("equal"):
        raise SystemExit("comparison failed")


if __name__ == "__main__":
    main()
