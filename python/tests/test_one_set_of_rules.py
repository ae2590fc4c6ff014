"""One set of business rules: the risk map and the alert list, given the same
alert configuration, count the same fence intrusions and sensor alarm
episodes per cell."""

from __future__ import annotations

import pathlib

import pandas as pd
import pytest

import safetyscope

FROM, TO = "2025-12-01", "2026-01-01"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    # Five tracked people per unit over the last 28 days of the year.
    out = tmp_path_factory.mktemp("tracked")
    safetyscope.generate_sample(out, scale=0.5, sites=2, seed=5)
    return out


def per_cell(frame, column: str = "cell") -> dict[str, int]:
    return {k: int(v) for k, v in frame.groupby(column).size().items()}


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"authorised": ["U02-P0005", "U01-P0002"], "thresholds": {"h2s": 12.0}},
        {"max_gap_minutes": 4.0, "min_duration_minutes": 150.0, "hysteresis": 3.0},
    ],
)
def test_risk_and_alerts_count_the_same_episodes(tracked, config):
    ds = safetyscope.Dataset.open(tracked)
    weights = {"alarm_episode": 1.0, "intrusion": 1.0}
    risk = ds.run("risk", from_=FROM, to=TO, alerts=config, weights=weights).to_pandas()
    intrusions = ds.alerts(list="intrusions", as_of=TO, from_=FROM, **config).to_pandas()
    episodes = ds.alerts(list="episodes", as_of=TO, from_=FROM, **config).to_pandas()
    got_i = {r.cell: int(r.c_intrusions) for r in risk.itertuples() if r.c_intrusions}
    got_a = {r.cell: int(r.c_alarms) for r in risk.itertuples() if r.c_alarms}
    assert got_i == per_cell(intrusions)
    assert got_a == per_cell(episodes)
    if config.get("authorised"):
        # The configuration matters: authorised people's entries are gone.
        default = ds.alerts(list="intrusions", as_of=TO, from_=FROM).to_pandas()
        assert len(intrusions) < len(default)
        assert not set(intrusions.person_id) & set(config["authorised"])


def test_every_result_names_its_evaluation_instant(tracked):
    ds = safetyscope.Dataset.open(tracked)
    # The end of the data: the local midnight after the latest dated row.
    latest = max(
        pd.read_parquet(tracked / f"{t}.parquet")[c].max()
        for t, c in [("incidents", "occurred_at"), ("hazards", "reported_at"), ("violations", "detected_at"),
                     ("readings", "ts"), ("positions", "ts")]
    )
    local = latest.tz_convert("Asia/Shanghai")
    end = (local.normalize() + pd.Timedelta(days=1)).isoformat()
    for a in safetyscope.analyses():
        meta = ds.run(a["name"]).to_arrow().schema.metadata
        assert meta[b"safetyscope.as_of"].decode() == end, a["name"]
    given = ds.alerts(list="overdue", as_of="2025-07-01").to_arrow().schema.metadata
    assert given[b"safetyscope.as_of"] == b"2025-07-01T00:00:00+08:00"


def test_no_data_no_now(tmp_path):
    # A site plan alone has no dated row: "now" is an error, never 1970.
    src = tmp_path / "plan"
    src.mkdir()
    (src / "cells.csv").write_text("cell,zone,site,row,col\nA1,w1,S1,0,0\n", encoding="utf-8")
    ds = safetyscope.Dataset.open(src)
    for name in ("alerts", "targets", "risk"):
        with pytest.raises(safetyscope.SafetyscopeError, match="as_of|`to`"):
            ds.run(name)
