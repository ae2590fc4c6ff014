"""The review-meeting report (`safetyscope report`): every number in the
document, read from its data attributes, equals the output of the analysis
it names, run by the CLI for the same dates; the document opens from
file:// with no network and prints to A4 without clipped tables; a job
writes the same document."""

from __future__ import annotations

import html
import json
import pathlib
import re
import subprocess
from collections import defaultdict

SPAN = re.compile(r'<span class="n" data-src="([^"]*)" data-key="([^"]*)" data-field="([^"]*)" data-value="([^"]*)">')

# The sample covers 2025; the data ends at 2026-01-01, the risk window is
# the 90 days before.
FROM, TO, RISK_FROM = "2025-01-01", "2026-01-01", "2025-10-03"


def cli_rows(cli: str, sample: pathlib.Path, tmp: pathlib.Path, *args: str) -> list[dict]:
    out = tmp / f"rows-{len(list(tmp.iterdir()))}.json"
    subprocess.run([cli, *args[:1], str(sample), *args[1:], "--out", str(out)], check=True, capture_output=True)
    return json.loads(out.read_text(encoding="utf-8"))


def numbers(doc: str) -> list[tuple[str, str, str, float | None]]:
    return [
        (src, html.unescape(key), field, float(v) if v else None)
        for src, key, field, v in SPAN.findall(doc)
    ]


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def expected(cli: str, sample: pathlib.Path, tmp: pathlib.Path) -> dict[tuple[str, str, str], float | None]:
    """Every number the report may show, from the CLI's own outputs."""
    want: dict[tuple[str, str, str], float | None] = {}
    for r in cli_rows(cli, sample, tmp, "targets", "--as-of", TO):
        for f in ["actual", "effective_target", "projection"]:
            want[("targets", f"{r['kpi']}|{r['period']}", f)] = r[f]
    for r in cli_rows(cli, sample, tmp, "kpis", "--periods", "month", "--scopes", "group", "--kpis", "trir,rectification_rate", "--as-of", TO):
        want[("kpis", f"{r['scope']}|{r['period']}|{r['kpi']}", "value")] = r["value"]
    for r in cli_rows(cli, sample, tmp, "overview", "--from", RISK_FROM, "--to", TO):
        if r["scope"] == "site":
            for f in ["rank", "red_cells", "orange_cells", "score", "trir", "overdue_hazards", "open_alerts"]:
                want[("overview", r["site"], f)] = r[f]
    for r in cli_rows(cli, sample, tmp, "risk", "--from", RISK_FROM, "--to", TO):
        for f in ["static_value", "ratio", "score"]:
            want[("risk", r["cell"], f)] = r[f]
    hs = cli_rows(cli, sample, tmp, "hotspots", "--from", FROM, "--to", TO)
    for r in hs:
        want[("hotspots", r["cell"], "z")] = r["z"]
    want[("hotspots", "all", "hot_cells")] = sum(1 for r in hs if r["class"].startswith("hot_"))
    for r in cli_rows(cli, sample, tmp, "peaks", "--from", FROM, "--to", TO):
        for f in ["events", "expected", "rate_ratio"]:
            want[("peaks", str(r["rank"]), f)] = r[f]
    overdue = cli_rows(cli, sample, tmp, "alerts", "--list", "overdue", "--as-of", TO)
    want[("overdue", "all", "count")] = len(overdue)
    groups: dict[str, list[float]] = defaultdict(list)
    for r in overdue:
        groups[f"{r['owner']}|{r['escalation']}"].append(r["hours_overdue"])
    for k, hours in groups.items():
        want[("overdue", k, "count")] = len(hours)
        want[("overdue", k, "max_days_overdue")] = max(hours) / 24
    repeats = cli_rows(cli, sample, tmp, "alerts", "--list", "repeats", "--from", FROM, "--as-of", TO)
    want[("repeats", "all", "runs")] = len(repeats)
    want[("repeats", "all", "people")] = len({r["person_id"] for r in repeats})
    for r in repeats:
        want[("repeats", f"{r['person_id']}|{r['kind']}|{r['first_day']}", "days")] = r["days"]
    for r in cli_rows(cli, sample, tmp, "alerts", "--list", "points", "--as-of", TO):
        want[("points", f"{r['person_id']}|{r['month']}", "total")] = r["total"]
    episodes = cli_rows(cli, sample, tmp, "alerts", "--list", "episodes", "--from", FROM, "--as-of", TO)
    want[("episodes", "all", "count")] = len(episodes)
    by: dict[str, list[float]] = defaultdict(list)
    for r in episodes:
        by[f"{r['site']}|{r['metric']}"].append(r["duration_minutes"])
    for k, d in by.items():
        want[("episodes", k, "count")] = len(d)
        want[("episodes", k, "total_minutes")] = sum(d)
        want[("episodes", k, "longest_minutes")] = max(d)
    return want


def test_every_number_equals_the_cli(cli, sample, tmp_path, artifacts):
    doc_path = tmp_path / "report.html"
    subprocess.run([cli, "report", str(sample), "--period", "2025", "--out", str(doc_path)], check=True, capture_output=True)
    doc = doc_path.read_text(encoding="utf-8")
    (artifacts / "report-2025-zh.html").write_text(doc, encoding="utf-8")
    got = numbers(doc)
    assert len(got) > 300
    want = expected(cli, sample, tmp_path)
    sections = {src for src, _, _, _ in got}
    assert sections == {"targets", "kpis", "overview", "risk", "hotspots", "peaks", "overdue", "repeats", "points", "episodes"}
    for src, key, field, v in got:
        assert (src, key, field) in want, (src, key, field)
        assert close(v, want[(src, key, field)]), (src, key, field, v, want[(src, key, field)])
    # The table of numbers is the document's.
    rows = cli_rows(cli, sample, tmp_path, "report", "--period", "2025")
    assert {(r["src"], r["key"], r["field"]) for r in rows} == {(s, k, f) for s, k, f, _ in got}
    # Chinese by default; the problems quote the rectification rate.
    assert "年度安全生产工作总结" in doc and "<html lang=\"zh-CN\">" in doc
    assert re.search(r"隐患整改率为 <span[^>]*>97\.1 %</span>，未达到目标", doc)


def test_opens_offline_and_prints_to_a4(browser, cli, sample, tmp_path, artifacts):
    doc_path = tmp_path / "report.html"
    subprocess.run([cli, "report", str(sample), "--lang", "en", "--out", str(doc_path)], check=True, capture_output=True)
    page = browser.new_page(viewport={"width": 1000, "height": 1400})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(doc_path.as_uri())
    assert page.inner_text("h1").endswith("safety review 2025")
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    page.emulate_media(media="print")
    # At the A4 print width no table is wider than the page.
    page.set_viewport_size({"width": 700, "height": 1000})
    wide = page.eval_on_selector_all("table", "els => els.filter(t => t.scrollWidth > t.parentElement.clientWidth + 1).length")
    assert wide == 0
    pdf = page.pdf(format="A4", print_background=True)
    (artifacts / "report-2025-en.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
    assert b"/MediaBox [0 0 595" in pdf or b"/MediaBox[0 0 595" in pdf
    assert errors == []
    page.close()


def test_a_job_writes_the_same_document(cli, sample, tmp_path):
    job = tmp_path / "job.toml"
    data = tmp_path / "sample"
    data.symlink_to(sample, target_is_directory=True)
    job.write_text(
        'data = "sample"\nout = "out"\n\n[[analysis]]\nname = "review-2025"\nkind = "report"\n'
        'options = { period = "2025", site = "U03" }\nformats = ["csv"]\ncharts = ["html"]\n',
        encoding="utf-8",
    )
    subprocess.run([cli, "run", str(job), "--allow-outside"], check=True, capture_output=True)
    direct = tmp_path / "direct.html"
    subprocess.run([cli, "report", str(sample), "--period", "2025", "--site", "U03", "--out", str(direct)], check=True, capture_output=True)
    assert (tmp_path / "out" / "review-2025.html").read_text(encoding="utf-8") == direct.read_text(encoding="utf-8")
    assert (tmp_path / "out" / "review-2025.csv").read_text(encoding="utf-8").startswith("section,src,key,field,value,text")
    # A year without data is an option error, exit 2.
    bad = subprocess.run([cli, "report", str(sample), "--period", "2031", "--out", str(tmp_path / "x.html")], capture_output=True, text=True)
    assert bad.returncode == 2 and "2031" in bad.stderr
    assert not (tmp_path / "x.html").exists()
