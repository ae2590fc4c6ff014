"""The single-file dashboard (`safetyscope dashboard --single-file`): its size
and the time to open it from file:// in headless Chromium.

    python bench/bench_single_file.py --bin $CARGO_TARGET_DIR/ci/safetyscope \\
        --pkg build/pkg-release --data build/sample --runs 3

Writes the file, opens it `--runs` times in a fresh page each and reports
the size, the time from navigation start until every section is drawn
(the page's `safetyscope:first-render` entry) and the JavaScript heap in
use once drawn (`performance.memory`, Chromium only).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--pkg", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = pathlib.Path(tempfile.mkdtemp()) / "dashboard.html"
    subprocess.run([a.bin, "dashboard", "--data", a.data, "--single-file", str(out), "--pkg", a.pkg], check=True)
    size = out.stat().st_size
    renders, heaps = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--enable-precise-memory-info"])
        for _ in range(a.runs):
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(out.as_uri())
            end = time.monotonic() + 300
            while page.evaluate("() => document.querySelector('#status').dataset.state") != "ready":
                if time.monotonic() > end:
                    raise SystemExit("timed out")
                page.wait_for_timeout(20)
            renders.append(page.evaluate("() => performance.getEntriesByName('safetyscope:first-render')[0].duration") / 1000)
            heaps.append(page.evaluate("() => performance.memory.usedJSHeapSize") / 1e6)
            page.close()
        browser.close()
    print(f"size {size / 1e6:.1f} MB ({size} bytes)")
    print(f"first render {min(renders):.2f} – {max(renders):.2f} s (median {statistics.median(renders):.2f} s)")
    print(f"JS heap in use {statistics.median(heaps):.0f} MB (median)")


if __name__ == "__main__":
    main()
