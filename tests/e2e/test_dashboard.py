"""The static dashboard in headless Chromium: the numbers it computes in
WebAssembly equal the CLI's for the same filters."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

from conftest import serve


def wait_js(page, expression: str, timeout: float = 60.0) -> None:
    """Wait until a JavaScript expression is true, polling from Python: the
    page's Content Security Policy forbids the string predicates that
    `wait_for_function` evaluates inside the page."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def cli_heatmap(cli: str, sample: pathlib.Path, tmp: pathlib.Path, *args: str) -> dict[str, int]:
    out = tmp / "hm.json"
    subprocess.run([cli, "heatmap", str(sample), "--out", str(out), *args], check=True, capture_output=True)
    rows = json.loads(out.read_text(encoding="utf-8"))
    return {r["cell"]: r["events"] for r in rows if r.get("row") is not None}


def page_cells(page, attr: str = "value") -> dict:
    page.wait_for_selector("#status[data-state=ready]", timeout=60_000)
    js = "els => Object.fromEntries(els.map(e => [e.dataset.cell, e.dataset.%s]))" % attr
    got = page.eval_on_selector_all(".cell", js)
    return {k: (int(float(v)) if attr == "value" else v) for k, v in got.items()}


def cli_json(cli: str, sample: pathlib.Path, tmp: pathlib.Path, command: str, *args: str) -> list[dict]:
    out = tmp / f"{command}.json"
    subprocess.run([cli, command, str(sample), "--out", str(out), *args], check=True, capture_output=True)
    return json.loads(out.read_text(encoding="utf-8"))


def page_window(page) -> tuple[str, str, list[str]]:
    """The page's site and its window as CLI flags (the end box is
    inclusive, the CLI's `--to` exclusive)."""
    import datetime as dt

    site = page.input_value("#site")
    start = page.input_value("#from")
    end = (dt.date.fromisoformat(page.input_value("#to")) + dt.timedelta(days=1)).isoformat()
    return site, start, ["--site", site, "--from", start, "--to", end]


def number(text: str) -> float:
    """A number as the page formats it (grouping commas, a minus sign)."""
    return float(text.replace(",", "").replace("−", "-"))


def choose_view(page, view: str) -> None:
    page.check(f"#view input[value={view}]")
    wait_js(page, "document.querySelector('#grid .cell') && document.querySelector('#status').dataset.state === 'ready' && document.querySelector('#map-title').textContent.length > 0")


def test_grid_matches_cli_and_filters_recompute(browser, site, sample, cli, tmp_path, artifacts):
    url, httpd = serve(site)
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        # The default view: the risk four-colour map of the first site, the
        # levels the CLI computes for the same (default) window.
        levels = page_cells(page, "level")
        assert len(levels) == 36
        site, _, flags = page_window(page)
        # The page opens on the unit the overview ranks first, with the risk
        # map's default window; the CLI's defaults give the same map.
        assert site == cli_json(cli, sample, tmp_path, "overview")[1]["site"]
        risk = {r["cell"]: r["level"] for r in cli_json(cli, sample, tmp_path, "risk", "--site", site)}
        assert levels == risk
        assert levels == {r["cell"]: r["level"] for r in cli_json(cli, sample, tmp_path, "risk", *flags)}
        page.screenshot(path=str(artifacts / "dashboard-risk.png"), full_page=True)

        # Hot spots: the classes the CLI computes.
        choose_view(page, "hotspots")
        wait_js(page, "document.querySelector('#grid .cell').dataset.class !== undefined")
        classes = page_cells(page, "class")
        assert classes == {r["cell"]: r["class"] for r in cli_json(cli, sample, tmp_path, "hotspots", *flags)}

        # Event counts.
        choose_view(page, "events")
        wait_js(page, "document.querySelector('#grid .cell').dataset.class === undefined && document.querySelector('#grid .cell').dataset.level === undefined")
        cells = page_cells(page)
        assert len(cells) == 36
        assert cells == cli_heatmap(cli, sample, tmp_path, *flags)
        page.screenshot(path=str(artifacts / "dashboard-default.png"), full_page=True)

        # Another site, a window, hazards as well: the CLI agrees.
        page.select_option("#site", "U05")
        page.fill("#from", "2025-04-01")
        page.dispatch_event("#from", "change")
        page.fill("#to", "2025-06-30")
        page.dispatch_event("#to", "change")
        page.check("#kinds input[value=hazards]")
        wait_js(page, "document.querySelector('#status').dataset.state === 'ready'")
        wait_js(page, "[...document.querySelectorAll('.cell')].every(e => e.dataset.cell.startsWith('U05'))")
        cells = page_cells(page)
        expected = cli_heatmap(cli, sample, tmp_path, "--site", "U05", "--from", "2025-04-01", "--to", "2025-07-01", "--kinds", "incidents,hazards")
        assert cells == expected
        # Back to the risk map for the same site and window.
        choose_view(page, "risk")
        wait_js(page, "document.querySelector('#grid .cell').dataset.level !== undefined")
        levels = page_cells(page, "level")
        risk = cli_json(cli, sample, tmp_path, "risk", "--site", "U05", "--from", "2025-04-01", "--to", "2025-07-01")
        assert levels == {r["cell"]: r["level"] for r in risk}
        # The cell panel's heading and the alerts' last column have their own
        # words (one key used to serve both, and the panel read "说明").
        assert page.inner_text("h2[data-i18n=detail]") == "网格详情"
        assert page.inner_text("#alerts th[data-i18n=note]") == "说明"
        page.click("#lang")
        assert page.inner_text("h1 [data-i18n=title]") == "Safety risk dashboard"
        assert page.inner_text("h2[data-i18n=detail]") == "Cell details"
        assert page.inner_text("#to-label") == "To (inclusive)"
        assert page.inner_text("#alerts th[data-i18n=note]") == "Detail"
        page.screenshot(path=str(artifacts / "dashboard-filtered.png"), full_page=True)
        assert errors == []
    finally:
        httpd.shutdown()


def test_broken_file_shows_a_readable_error(browser, site, tmp_path, artifacts):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    (broken / "data" / "incidents.parquet").write_bytes(b"this is not parquet")
    url, httpd = serve(broken)
    try:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#status[data-state=error]", timeout=60_000)
        msg = page.inner_text("#error")
        assert "incidents.parquet" in msg and "Parquet" in msg, msg
        page.screenshot(path=str(artifacts / "dashboard-broken-file.png"), full_page=True)
    finally:
        httpd.shutdown()


def test_time_matrix_and_peaks_match_cli(browser, site, sample, cli, tmp_path, artifacts):
    url, httpd = serve(site)
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#status[data-state=ready]", timeout=60_000)
        page.wait_for_selector("#when td")
        # The whole year, where the planted night peaks stand out.
        page.fill("#from", "2025-01-01")
        page.dispatch_event("#from", "change")
        wait_js(page, "document.querySelector('#status').dataset.state === 'ready' && document.querySelector('#window-note').textContent.includes('2025-01-01')")
        got = page.eval_on_selector_all(
            "#when td",
            "els => els.map(e => [Number(e.dataset.weekday), Number(e.dataset.hour), e.textContent, e.classList.contains('peak')])",
        )
        got = [(d, h, number(v), p) for d, h, v, p in got]
        assert len(got) == 168
        _, _, flags = page_window(page)
        cells = cli_json(cli, sample, tmp_path, "peaks", *flags, "--cells")
        want = {(c["weekday"], c["hour"]): c["events"] for c in cells}
        assert {(d, h): v for d, h, v, _ in got} == want
        peaks = {(c["weekday"], c["hour"]) for c in cells if c["significant"] and c["rate_ratio"] > 1}
        assert {(d, h) for d, h, _, p in got if p} == peaks
        # The planted night hours are among the outlined peaks.
        assert {(d, 2) for d in range(7)} & peaks
        periods = cli_json(cli, sample, tmp_path, "peaks", *flags)
        rows = page.eval_on_selector_all("#periods tbody tr", "els => els.map(e => e.children[2].textContent)")
        assert rows == [f"{p['hour_from']}:00–{p['hour_to']}:00" for p in periods]
        page.locator("#patterns").screenshot(path=str(artifacts / "dashboard-when.png"))
        assert errors == []
    finally:
        httpd.shutdown()


def test_target_cards_and_alerts_match_cli(browser, site, sample, cli, tmp_path, artifacts):
    url, httpd = serve(site)
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#status[data-state=ready]", timeout=60_000)
        page.wait_for_selector("#cards .card")
        cards = page.eval_on_selector_all("#cards .card", "els => els.map(e => [e.dataset.kpi, e.dataset.period, e.dataset.status])")
        want = cli_json(cli, sample, tmp_path, "targets")
        assert cards == [[r["kpi"], r["period"], r["status"]] for r in want]
        site, _, _ = page_window(page)
        alerts = cli_json(cli, sample, tmp_path, "alerts", "--site", site)
        assert len(alerts) > 10
        # The ten most urgent first (urgency, then longest open), then all.
        urgent = sorted(alerts, key=lambda a: (-a["urgency"], -(a["age_days"] or 0)))
        subjects = page.eval_on_selector_all("#alerts tbody tr", "els => els.map(e => e.children[1].textContent)")
        assert subjects == [a["subject"] for a in urgent[:10]]
        page.click("#alerts-all")
        subjects = page.eval_on_selector_all("#alerts tbody tr", "els => els.map(e => e.children[1].textContent)")
        assert sorted(subjects) == sorted(a["subject"] for a in alerts)
        # Filtered by kind.
        page.select_option("#alert-kind", "overdue_hazard")
        kinds = page.eval_on_selector_all("#alerts tbody tr", "els => els.map(e => e.dataset.kind)")
        assert set(kinds) == {"overdue_hazard"}
        page.locator("#targets").screenshot(path=str(artifacts / "dashboard-targets.png"))
        page.locator("#follow-up").screenshot(path=str(artifacts / "dashboard-alerts.png"))
        assert errors == []
    finally:
        httpd.shutdown()


def test_zone_hour_and_exports(browser, site, sample, cli, tmp_path, artifacts):
    url, httpd = serve(site)
    try:
        page = browser.new_page(accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#status[data-state=ready]", timeout=60_000)
        page.wait_for_selector("#zonehour td")
        got = page.eval_on_selector_all("#zonehour td", "els => els.map(e => [e.dataset.zone, Number(e.dataset.hour), e.textContent])")
        got = [(z, h, number(v)) for z, h, v in got]
        _, _, flags = page_window(page)
        prof = cli_json(cli, sample, tmp_path, "patterns", *flags, "--by", "zone")
        want: dict[tuple[str, int], float] = {}
        for r in prof:
            if r.get("hour") is not None:
                want[(r["zone"], r["hour"])] = want.get((r["zone"], r["hour"]), 0) + r["events"]
        assert {(z, h): v for z, h, v in got} == want
        # Every export produces a file of its kind.
        for section, kind, magic in [("map", "svg", b"<svg"), ("when", "png", b"\x89PNG"), ("alerts", "csv", b"kind,subject")]:
            with page.expect_download() as d:
                page.click(f"button[data-section={section}][data-export={kind}]")
            body = pathlib.Path(d.value.path()).read_bytes()
            assert body.startswith(magic), (section, kind, body[:20])
        csv = None
        with page.expect_download() as d:
            page.click("button[data-section=targets][data-export=csv]")
        csv = pathlib.Path(d.value.path()).read_text(encoding="utf-8")
        assert csv.splitlines()[0].startswith("kpi,scope,period")
        assert len(csv.splitlines()) == 1 + len(cli_json(cli, sample, tmp_path, "targets"))
        assert errors == []
    finally:
        httpd.shutdown()


def test_strings_from_data_render_as_text(browser, site, tmp_path, artifacts):
    import pyarrow as pa
    import pyarrow.parquet as pq

    evil = "<img src=x onerror=alert(1)>"
    hostile = tmp_path / "site"
    shutil.copytree(site, hostile)
    cells = pq.read_table(hostile / "data" / "cells.parquet")
    owners = [evil] * cells.num_rows
    pq.write_table(cells.set_column(cells.schema.get_field_index("owner"), "owner", pa.array(owners)), hostile / "data" / "cells.parquet")
    haz = pq.read_table(hostile / "data" / "hazards.parquet")
    hz_owner = [evil] * haz.num_rows
    pq.write_table(haz.set_column(haz.schema.get_field_index("owner"), "owner", pa.array(hz_owner)), hostile / "data" / "hazards.parquet")
    url, httpd = serve(hostile)
    try:
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.wait_for_selector("#status[data-state=ready]", timeout=60_000)
        page.click("#grid .cell >> nth=0")
        assert evil in page.inner_text("#detail")
        assert any(evil in t for t in page.eval_on_selector_all("#alerts td", "els => els.map(e => e.textContent)"))
        assert page.eval_on_selector_all("main img, #alerts img, #detail img", "els => els.length") == 0
        page.wait_for_timeout(300)
        assert dialogs == []
        page.screenshot(path=str(artifacts / "dashboard-xss-as-text.png"), full_page=True)
    finally:
        httpd.shutdown()


def test_single_file_report_opens_from_file_url(browser, sample, cli, tmp_path, artifacts):
    """`safetyscope dashboard --single-file` writes one HTML file with the
    WASM module and the data inline; it opens from file:// with no network."""
    pkg = pathlib.Path(__file__).resolve().parents[2] / "build" / "pkg"
    report = tmp_path / "report.html"
    subprocess.run([cli, "dashboard", "--data", str(sample), "--single-file", str(report), "--pkg", str(pkg)],
                   check=True, capture_output=True)
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(report.as_uri())
    page.wait_for_selector("#status[data-state=ready]", timeout=120_000)
    levels = page_cells(page, "level")
    _, _, flags = page_window(page)
    risk = {r["cell"]: r["level"] for r in cli_json(cli, sample, tmp_path, "risk", *flags)}
    assert levels == risk
    # Sendable: the module gzipped, no position fixes (and the page says so).
    size = report.stat().st_size
    assert size <= 20 * 1024 * 1024, size
    assert page.get_attribute("#left-out", "data-tables") == "positions"
    assert "人员定位" in page.text_content("#left-out")
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests
    assert errors == [], errors
    page.screenshot(path=str(artifacts / "dashboard-single-file.png"), full_page=True)


def test_pattern_filters_match_cli(browser, site, sample, cli, tmp_path, artifacts):
    url, httpd = serve(site)
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#status[data-state=ready]", timeout=60_000)
        page.select_option("#zone", "仓库")
        page.select_option("#severity", "near_miss")
        wait_js(page, "document.querySelector('#status').dataset.state === 'ready'")
        page.wait_for_timeout(200)
        wait_js(page, "document.querySelector('#status').dataset.state === 'ready'")
        got = page.eval_on_selector_all("#when td", "els => els.map(e => [Number(e.dataset.weekday), Number(e.dataset.hour), e.textContent])")
        got = [(d, h, number(v)) for d, h, v in got]
        _, _, flags = page_window(page)
        cells = cli_json(cli, sample, tmp_path, "peaks", *flags, "--zone", "仓库", "--severity", "near_miss", "--cells")
        assert {(d, h): v for d, h, v in got} == {(c["weekday"], c["hour"]): c["events"] for c in cells}
        assert sum(v for _, _, v in got) > 0
        # A cell's details list its most recent events.
        page.click("#grid .cell >> nth=0")
        recent = page.inner_text("#detail")
        assert "最近事件" in recent and "2025-" in recent
        assert errors == []
    finally:
        httpd.shutdown()


def test_own_files_load_and_bad_ones_leave_the_rest_working(browser, site, tmp_path, artifacts):
    """A user opens their own CSV files with a mapping; a broken file shows
    which file and what is wrong, and the dashboard keeps its data."""
    repo = pathlib.Path(__file__).resolve().parents[2]
    mine = repo / "examples/real/mine-accidents/msha_accidents_2000-2015_sample.csv"
    incidents = tmp_path / "incidents.csv"
    shutil.copy(mine, incidents)
    mapping = tmp_path / "mine.toml"
    text = (repo / "examples/real/mine-accidents.toml").read_text(encoding="utf-8")
    mapping.write_text(text.replace('path = "mine-accidents/msha_accidents_2000-2015_sample.csv"\n', ""), encoding="utf-8")
    url, httpd = serve(site)
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#status[data-state=ready]", timeout=60_000)
        page.set_input_files("#own-files", [str(incidents), str(mapping)])
        wait_js(page, "[...document.querySelectorAll('#validation tbody td')].some(td => td.textContent === '1,976')")
        rows = page.eval_on_selector_all("#validation tbody tr", "els => els.map(e => [e.dataset.table, ...[...e.children].slice(1).map(c => c.textContent)])")
        assert ["incidents", "2,000", "1,976", "24"] in rows
        # No site plan: the units are the mines, most accidents first; over
        # the whole record the first has accidents at known hours.
        page.fill("#from", "2000-01-01")
        page.dispatch_event("#from", "change")
        wait_js(page, "document.querySelector('#status').dataset.state === 'ready' && document.querySelector('#window-note').textContent.includes('2000-01-01')")
        total = page.eval_on_selector_all("#when td", "els => els.reduce((a, e) => a + Number(e.textContent.replace(/,/g, '')), 0)")
        assert total > 0
        # A broken file: a readable message, the loaded data stays.
        bad = tmp_path / "hazards.csv"
        bad.write_text("id,reported_at\nh1,not a time\n")
        page.set_input_files("#own-files", [str(bad)])
        page.wait_for_selector("#error:not([hidden])")
        msg = page.inner_text("#error")
        assert "hazards" in msg, msg
        rows2 = page.eval_on_selector_all("#validation tbody tr", "els => els.map(e => [e.dataset.table, ...[...e.children].slice(1).map(c => c.textContent)])")
        assert rows2 == rows
        page.screenshot(path=str(artifacts / "dashboard-own-files.png"), full_page=True)
        assert errors == []
    finally:
        httpd.shutdown()
