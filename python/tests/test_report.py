"""The review-meeting report and the group overview from Python: the
document's numbers are the ones its table lists, the overview's ranking is
the risk roll-up's, recomputed here with pandas from `risk_map(by="site")`."""

from __future__ import annotations

import html
import os
import re

import pytest

import safetyscope

SPAN = re.compile(r'<span class="n" data-src="([^"]*)" data-key="([^"]*)" data-field="([^"]*)" data-value="([^"]*)">([^<]*)</span>')


def test_report_document_and_numbers(sample, tmp_path):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    r = ds.report(period="2025", lang="en")
    doc = r.document
    assert doc is not None and doc.startswith("<!doctype html>")
    spans = SPAN.findall(doc)
    assert spans
    table = r.to_pandas()
    assert list(table.columns) == ["section", "src", "key", "field", "value", "text"]
    listed = {(s, k, f): (v, t) for _, s, k, f, v, t in table.itertuples(index=False, name=None)}
    for src, key, field, value, text in spans:
        v, t = listed[(src, html.unescape(key), field)]
        assert (float(value) if value else None) == (None if v != v else v)
        assert html.unescape(text) == t
    out = tmp_path / "review.html"
    r.save_html(out)
    assert out.read_text(encoding="utf-8") == doc
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    # A result without a document says so.
    with pytest.raises(safetyscope.OptionError):
        ds.heatmap().save_html(tmp_path / "x.html")
    with pytest.raises(safetyscope.OptionError, match="zh or en"):
        ds.report(lang="fr")


def test_overview_ranks_as_the_risk_roll_up(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    ov = ds.overview().to_pandas()
    window = dict(from_=ov["from"].iloc[0], to=ov["to"].iloc[0])
    by_site = ds.risk_map(by="site", **window).to_pandas()
    ranked = by_site.sort_values(["red_cells", "orange_cells", "score", "site"], ascending=[False, False, False, True])
    sites = ov[ov["scope"] == "site"]
    assert list(sites["site"]) == list(ranked["site"])
    assert list(sites["rank"]) == list(range(1, len(sites) + 1))
    group = ov[ov["scope"] == "group"].iloc[0]
    assert group["red_cells"] == by_site["red_cells"].sum()
    assert group["orange_cells"] == by_site["orange_cells"].sum()
    # The year's TRIR per site is the KPI's, the target the group's TRIR
    # target for the year, and "meets" compares the two.
    year = ov["year"].iloc[0]
    k = ds.kpis(kpis=["trir"], periods=["year"], scopes=["site"], as_of=window["to"]).to_pandas()
    k = k[k["period"] == year].set_index("scope")["value"]
    tt = ds.track_targets(as_of=window["to"]).to_pandas()
    target = tt[(tt.kpi == "trir") & (tt.scope == "group") & (tt.period == year)]["effective_target"].iloc[0]
    for _, row in sites.iterrows():
        assert row["trir"] == pytest.approx(k[row["site"]], rel=1e-12)
        assert row["trir_target"] == pytest.approx(target, rel=1e-12)
        assert bool(row["trir_meets"]) == (k[row["site"]] <= target)
    # Open alerts and overdue hazards per site equal the alert list's.
    alerts = ds.alerts(as_of=window["to"]).to_pandas()
    for _, row in sites.iterrows():
        mine = alerts[alerts["site"] == row["site"]]
        assert row["open_alerts"] == len(mine)
        assert row["overdue_hazards"] == (mine["kind"] == "overdue_hazard").sum()
