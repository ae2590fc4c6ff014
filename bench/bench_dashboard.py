"""The dashboard in headless Chromium on a large dataset: first render and
filter changes, with the WASM module's size.

    python bench/bench_dashboard.py --bin $CARGO_TARGET_DIR/release/safetyscope \\
        --pkg build/pkg-release --scale 13.5 --out /tmp/bench-dashboard

The sample generator writes the event tables (incidents, hazards,
violations: about 74,000 events per unit of scale) with the plan, exposure,
activities, targets and thresholds; `safetyscope dashboard` turns them into a
site with the given wasm-bindgen package; a local static server serves it
and Debian's Chromium (driven by playwright) opens it, `--runs` times in a
fresh page each.

Timings come from the page's own User Timing entries (`safetyscope:*`,
written by web/app.js): `init` (module compiled and instantiated),
`fetched` (data files downloaded), `load` (files read and validated in
WASM), `first-render` (from navigation start until every section is drawn)
and `recompute` (one filter change: risk map, hour × weekday peaks, zone ×
hour, monthly trend, targets and alerts recomputed and drawn; targets
depend only on the end date, alerts and the trend on the site and the end
date, so the page reuses them when other filters change) and
`overview-update` (after a date change, the group overview of every unit,
computed once the unit's views are drawn). Filter changes: the site, a zone, an event
category, the start date and the end date, each applied and then reset.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import pathlib
import shutil
import statistics
import subprocess
import threading
import time

import pyarrow.parquet as pq

TABLES = "incidents,hazards,violations,exposure,activities,targets,thresholds"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm", ".js": "text/javascript"}

    def log_message(self, *args: object) -> None:
        pass


def wait_ready(page, previous: int, timeout: float = 600.0) -> None:
    """Wait until the page has written more `safetyscope:recompute` entries
    than `previous` (polled from here: the page's CSP forbids the string
    predicates playwright would evaluate inside it)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = page.evaluate("() => document.querySelector('#status').dataset.state")
        if state == "error":
            raise SystemExit("dashboard error: " + page.evaluate("() => document.getElementById('error').textContent"))
        n = page.evaluate("() => performance.getEntriesByName('safetyscope:recompute').length")
        if n > previous and state == "ready":
            return
        page.wait_for_timeout(20)
    raise SystemExit("timed out waiting for the dashboard")


def measures(page) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for e in page.evaluate("() => performance.getEntriesByType('measure').map(e => [e.name, e.duration])"):
        if e[0].startswith("safetyscope:"):
            out.setdefault(e[0].split(":", 1)[1], []).append(e[1])
    return out


def change(page, selector: str, value: str | None, fill: bool = False) -> None:
    n = page.evaluate("() => performance.getEntriesByName('safetyscope:recompute').length")
    if fill:
        # Playwright's fill fires the input's input and change events.
        page.fill(selector, value or "")
    else:
        page.select_option(selector, value or "")
    wait_ready(page, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="safetyscope CLI (writes the data and the site)")
    ap.add_argument("--pkg", required=True, help="wasm-bindgen output directory (the module to measure)")
    ap.add_argument("--scale", type=float, default=13.5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="/tmp/safetyscope-bench-dashboard")
    a = ap.parse_args()

    out = pathlib.Path(a.out)
    data = out / f"data-{a.scale:g}"
    if not (data / "incidents.parquet").exists():
        subprocess.run([a.bin, "generate", "--out", str(data), "--scale", str(a.scale), "--only", TABLES], check=True)
    events = {t: pq.read_metadata(data / f"{t}.parquet").num_rows for t in ("incidents", "hazards", "violations")}
    site = out / "site"
    subprocess.run([a.bin, "dashboard", "--data", str(data), "--out", str(site), "--pkg", a.pkg], check=True)
    wasm = next(pathlib.Path(a.pkg).glob("*.wasm")).read_bytes()
    data_bytes = sum(p.stat().st_size for p in (site / "data").iterdir())

    handler = functools.partial(_Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"

    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"],
        )
        for _ in range(a.runs):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url)
            wait_ready(page, 0)
            zones = page.evaluate("() => [...document.querySelectorAll('#zone option')].map(o => o.value).filter(v => v)")
            categories = page.evaluate("() => [...document.querySelectorAll('#category option')].map(o => o.value).filter(v => v)")
            sites = page.evaluate("() => [...document.querySelectorAll('#site option')].map(o => o.value)")
            start, end = page.input_value("#from"), page.input_value("#to")
            change(page, "#site", sites[-1])
            change(page, "#site", sites[0])
            change(page, "#zone", zones[0])
            change(page, "#zone", "")
            change(page, "#category", categories[0])
            change(page, "#category", "")
            change(page, "#from", "2025-11-01", fill=True)
            change(page, "#from", start, fill=True)
            change(page, "#to", "2025-12-15", fill=True)
            change(page, "#to", end, fill=True)
            m = measures(page)
            runs.append(m)
            page.close()
        browser.close()
    httpd.shutdown()

    first = [r["first-render"][0] for r in runs]
    filters = [x for r in runs for x in r["recompute"][1:]]
    result = {
        "events": events,
        "events_total": sum(events.values()),
        "data_files_mb": round(data_bytes / 1e6, 1),
        "wasm_mb": round(len(wasm) / 1e6, 2),
        "wasm_gzip_mb": round(len(gzip.compress(wasm, 9)) / 1e6, 2),
        "first_render_s_median": round(statistics.median(first) / 1000, 2),
        "first_render_s": [round(x / 1000, 2) for x in first],
        "stages_s_median": {
            k: round(statistics.median(r[k][0] for r in runs) / 1000, 2) for k in ("init", "fetched", "load")
        },
        "first_recompute_s_median": round(statistics.median(r["recompute"][0] for r in runs) / 1000, 2),
        # The computations of the first render (the overview of every unit,
        # the category choices, then the first unit's views), each the
        # first of its name.
        "first_compute_ms_median": {
            k.split(":", 1)[1]: round(statistics.median(r[k][0] for r in runs))
            for k in runs[0] if k.startswith("compute:")
        },
        "filter_ms_median": round(statistics.median(filters)),
        "filter_compute_ms_median": {
            k.split(":", 1)[1]: round(statistics.median(x for r in runs for x in r[k][1:]))
            for k in runs[0] if k.startswith("compute:") and any(r[k][1:] for r in runs)
        },
        "filter_ms_max": round(max(filters)),
        "filter_changes": len(filters),
        "overview_update_ms": sorted(round(x) for r in runs for x in r.get("overview-update", [])),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
