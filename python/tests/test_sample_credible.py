"""The default sample describes a believable group: its injury rates, computed
here with pandas from the sample's own files and the textbook definitions
(docs/kpis.md, docs/sample-data.md), lie in published ranges, and
safetyscope's KPIs agree with them."""

from __future__ import annotations

import pathlib

import pandas as pd
import pytest

import safetyscope

YEAR = 2025


@pytest.fixture(scope="module")
def default_sample(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("default-sample")
    safetyscope.generate_sample(out)
    return out


def rates(out: pathlib.Path) -> dict[str, float]:
    inc = pd.read_parquet(out / "incidents.parquet")
    exp = pd.read_parquet(out / "exposure.parquet")
    local = inc.occurred_at.dt.tz_convert("Asia/Shanghai")
    inc = inc[local.dt.year == YEAR]
    start = exp.period_start.dt.tz_convert("Asia/Shanghai")
    exp = exp[start.dt.year == YEAR]
    hours = exp.hours_worked.sum()
    # Headcount: the mean over the months of the summed zone headcounts.
    heads = exp.groupby(start[start.dt.year == YEAR].dt.month).headcount.sum().mean()
    injury = inc.severity.isin(["minor", "serious", "fatal"])
    recordable = inc.recordable.where(inc.recordable.notna(), injury).astype(bool)
    lost = inc.lost_days.fillna(0)
    lost = lost.where(~((inc.severity == "fatal") & inc.lost_days.isna()), 6000)
    lti = recordable & (lost > 0)
    return {
        "people": heads,
        "hours": hours,
        "trir": recordable.sum() * 200_000 / hours,
        "ltifr": lti.sum() * 1_000_000 / hours,
        "fatalities": (inc.severity == "fatal").sum(),
        "near_miss_ratio": (inc.severity == "near_miss").sum() / recordable.sum(),
        "serious": inc.severity.isin(["serious", "fatal"]).sum(),
        "minor": (inc.severity == "minor").sum(),
        "first_aid": (inc.severity == "first_aid").sum(),
        "near_miss": (inc.severity == "near_miss").sum(),
    }


def test_default_sample_rates_are_in_published_ranges(default_sample):
    r = rates(default_sample)
    assert 1_000 <= r["people"] <= 50_000, r
    assert 0.5 <= r["trir"] <= 5, r
    assert 0.2 <= r["ltifr"] <= 5, r
    # About 0.4 expected a year (Poisson): 2 or more has probability 6 %,
    # 3 or more 0.8 %.
    assert 0 <= r["fatalities"] <= 2, r
    assert r["near_miss_ratio"] >= 10, r
    # Bird's 1 : 10 : 30 : 600, within a factor of two at each step.
    assert 5 <= r["minor"] / r["serious"] <= 20, r
    assert 15 <= r["first_aid"] / r["serious"] <= 60, r
    assert 300 <= r["near_miss"] / r["serious"] <= 1200, r
    ds = safetyscope.Dataset.open(default_sample)
    hazards = ds.sql("select count(*) as n from hazards").to_pandas().n[0]
    violations = ds.sql("select count(*) as n from violations").to_pandas().n[0]
    assert 1_000 <= hazards <= 100_000 and 1_000 <= violations <= 100_000


def test_the_kpis_agree_with_the_definitions(default_sample):
    r = rates(default_sample)
    ds = safetyscope.Dataset.open(default_sample)
    k = ds.kpis(periods=["year"], scopes=["group"], kpis=["trir", "ltifr", "fatalities"]).to_pandas()
    k = k[k.period == str(YEAR)].set_index("kpi").value
    assert k["trir"] == pytest.approx(r["trir"], rel=1e-12)
    assert k["ltifr"] == pytest.approx(r["ltifr"], rel=1e-12)
    assert k["fatalities"] == r["fatalities"]


def test_scale_grows_the_group_not_the_rate(tmp_path):
    small = tmp_path / "half"
    safetyscope.generate_sample(small, scale=0.5)
    half = rates(small)
    assert 0.5 <= half["trir"] <= 5 and 0.2 <= half["ltifr"] <= 5, half
    assert half["people"] == pytest.approx(4_800, rel=0.01)
