"""Time-of-day patterns against independent computations: statsmodels for
the rate tests, pointpats for Knox, pandas for profiles, trends, Pareto and
aoristic weights."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from pointpats.spacetime import Knox
from statsmodels.stats.multitest import multipletests
from statsmodels.stats import rates as sm_rates

import safetyscope

ROSTER = {
    "exposure": "shifts",
    "shifts": [("day", "08:00", "20:00", 1.0), ("night", "20:00", "08:00", 0.5)],
    "weekday_factors": [1, 1, 1, 1, 1, 0.8, 0.6],
}


@pytest.fixture(scope="module")
def ds(sample: tuple[pathlib.Path, dict[str, Any]]) -> safetyscope.Dataset:
    return safetyscope.Dataset.open(sample[0])


def incidents(ds: safetyscope.Dataset) -> pd.DataFrame:
    df = ds.table("incidents").to_pandas()
    local = df["occurred_at"].dt.tz_convert(ds.timezone)
    df["weekday"] = local.dt.day_of_week
    df["hour"] = local.dt.hour
    return df


def test_peak_tests_equal_statsmodels(ds: safetyscope.Dataset) -> None:
    cells = ds.peaks(cells=True, by=["site"], **ROSTER).to_pandas()
    assert len(cells) == 3 * 168
    checked = 0
    for site, g in cells.groupby("site"):
        total = g["events"].sum()
        for row in g.itertuples():
            k, share = int(row.events), float(row.exposure_share)
            res = sm_rates.test_poisson_2indep(
                k, share, int(total - k), 1 - share, method="exact-cond"
            )
            assert row.p_value == pytest.approx(res.pvalue, rel=1e-8, abs=1e-300), (site, row)
            ci = scipy.stats.binomtest(k, int(total), share).proportion_ci(0.95, method="exact")
            scale = (1 - share) / share
            assert row.ci_low == pytest.approx(ci.low / (1 - ci.low) * scale, rel=1e-7)
            assert row.rate_ratio == pytest.approx(
                (k / share) / ((total - k) / (1 - share)), rel=1e-12
            )
            checked += 1
    q = multipletests(cells["p_value"], method="fdr_bh")[1]
    np.testing.assert_allclose(cells["q_value"], q, rtol=1e-9)
    assert checked == 3 * 168


def test_peaks_find_the_planted_hours(ds: safetyscope.Dataset) -> None:
    top = ds.peaks(grid="hour", **ROSTER).to_pandas()
    assert list(zip(top["hour_from"], top["hour_to"])) == [(2, 4)]
    assert 2.0 < top["rate_ratio"][0] < 4.5


def test_profile_equals_pandas(ds: safetyscope.Dataset) -> None:
    df = incidents(ds)
    known = df[df["time_known"].fillna(True)]
    want = known.groupby(["site", "weekday", "hour"]).size()
    p = ds.time_profile(by=["site"]).to_pandas()
    got = p.dropna(subset=["hour"]).set_index(["site", "weekday", "hour"])["events"]
    full = want.reindex(got.index, fill_value=0)
    np.testing.assert_array_equal(got.to_numpy(), full.to_numpy())
    unknown = df[~df["time_known"].fillna(True)].groupby(["site", "weekday"]).size()
    gu = p[p["hour"].isna()].set_index(["site", "weekday"])["events"]
    np.testing.assert_array_equal(gu.to_numpy(), unknown.reindex(gu.index, fill_value=0).to_numpy())


def test_aoristic_weights_equal_a_hand_computation(ds: safetyscope.Dataset) -> None:
    df = ds.table("incidents").to_pandas()
    tz = ds.timezone
    rows = []
    for r in df.itertuples():
        if pd.isna(r.occurred_until) or r.occurred_until <= r.occurred_at:
            t = r.occurred_at.tz_convert(tz)
            if r.time_known is False:
                continue
            rows.append((t.weekday(), t.hour, 1.0))
            continue
        start, end = r.occurred_at, r.occurred_until
        length = (end - start).total_seconds()
        edge = start.floor("h")
        while edge < end:
            nxt = edge + pd.Timedelta(hours=1)
            overlap = (min(nxt, end) - max(edge, start)).total_seconds()
            loc = edge.tz_convert(tz)
            rows.append((loc.weekday(), loc.hour, overlap / length))
            edge = nxt
    want = pd.DataFrame(rows, columns=["weekday", "hour", "w"]).groupby(["weekday", "hour"])["w"].sum()
    p = ds.time_profile(time="aoristic").to_pandas().dropna(subset=["hour"])
    got = p.set_index(["weekday", "hour"])["events"]
    np.testing.assert_allclose(got.to_numpy(), want.reindex(got.index, fill_value=0).to_numpy(), atol=1e-9)
    assert df["occurred_until"].notna().sum() > 10


def test_trends_and_pareto_equal_pandas(ds: safetyscope.Dataset) -> None:
    df = incidents(ds)
    month = df["occurred_at"].dt.tz_convert(ds.timezone).dt.strftime("%Y-%m")
    want = df.groupby(month).size()
    t = ds.trends().to_pandas().set_index("month")
    np.testing.assert_array_equal(t["events"].to_numpy(), want.reindex(t.index, fill_value=0).to_numpy())
    np.testing.assert_allclose(
        t["rolling_12"].dropna().to_numpy(),
        t["events"].rolling(12).mean().dropna().to_numpy(),
        rtol=1e-12,
    )
    p = ds.pareto().to_pandas()
    vc = df["category"].value_counts()
    assert list(p["events"]) == list(vc.sort_values(ascending=False, kind="stable").to_numpy())
    cum = vc.sort_values(ascending=False).cumsum() / vc.sum()
    assert int(p["vital_few"].sum()) == int((cum < 0.8).sum()) + 1


def test_knox_equals_pointpats(ds: safetyscope.Dataset) -> None:
    df = ds.table("incidents").to_pandas()
    df = df[df["site"] == "U01"].reset_index(drop=True)
    s = df[["x", "y"]].to_numpy()
    t = (df["occurred_at"].astype("int64") / 86_400e6).to_numpy().reshape(-1, 1)
    ref = Knox(s, t, delta=4.0, tau=2.0, permutations=0)
    got = ds.knox(site="U01", distance=4.0, days=2.0, permutations=99).to_pandas().iloc[0]
    assert int(got["statistic"]) == ref.statistic_
    assert got["expected"] == pytest.approx(ref.expected[0, 0], rel=1e-12)
    assert got["p_poisson"] == pytest.approx(ref.p_poisson, rel=1e-9, abs=1e-12)
    assert 0 < got["p_permutation"] <= 1


def test_bad_options_raise_option_errors(ds: safetyscope.Dataset) -> None:
    with pytest.raises(safetyscope.OptionError, match="unknown variant `floor`"):
        ds.time_profile(by=["floor"])
    with pytest.raises(safetyscope.OptionError, match="15 minutes"):
        ds.shift_profile(shifts=[("A", "06:10", "14:00")])
    with pytest.raises(safetyscope.OptionError):
        ds.time_profile(colour="red")
    with pytest.raises(safetyscope.OptionError, match="aoristic"):
        ds.peaks(time="aoristic")


def test_declared_roster_is_the_default_exposure(ds: safetyscope.Dataset) -> None:
    # The sample's dataset.toml declares the roster it was generated with.
    p = ds.time_profile().to_pandas()
    assert set(p["exposure_basis"]) == {"shifts"}
    explicit = ds.peaks(cells=True, **ROSTER).to_pandas()
    declared = ds.peaks(cells=True).to_pandas()
    np.testing.assert_allclose(declared["p_value"], explicit["p_value"], rtol=1e-12)
    # A night hour at half strength: twice the exposure-normalised weight.
    hours = p.dropna(subset=["hour"]).groupby("hour")["exposure_hours"].sum()
    assert hours[2] == pytest.approx(hours[12] / 2, rel=1e-9)


def test_charts_save_as_png_with_chinese_labels(ds: safetyscope.Dataset, tmp_path: pathlib.Path) -> None:
    import struct
    import zlib

    chart = ds.time_profile(site="U01").plot()
    assert chart is not None and "周一" in chart.svg
    out = tmp_path / "profile.png"
    chart.save(out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    # Saved at twice the SVG size.
    import math

    size = [float(chart.svg.split(f'{k}="')[1].split('"')[0]) for k in ("width", "height")]
    assert (width, height) == (math.ceil(2 * size[0]), math.ceil(2 * size[1]))
    # The compressed pixel data holds every row of RGBA pixels.
    idat = b"".join(
        data[i + 8 : i + 8 + struct.unpack(">I", data[i : i + 4])[0]]
        for i in _chunks(data, b"IDAT")
    )
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    assert len(raw) == stride * height
    with pytest.raises(safetyscope.OptionError, match=".svg or .png"):
        chart.save(tmp_path / "x.gif")


def _chunks(data: bytes, kind: bytes) -> list[int]:
    """Offsets of the PNG chunks of a kind."""
    out, i = [], 8
    while i < len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        if data[i + 4 : i + 8] == kind:
            out.append(i)
        i += 12 + n
    return out
