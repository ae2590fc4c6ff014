"""Kernel density against scikit-learn's KernelDensity."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.neighbors import KernelDensity

import safetyscope


def points(path, table: str, site: str, time_col: str, lo: str | None = None, hi: str | None = None) -> pd.DataFrame:
    t = pq.read_table(path / f"{table}.parquet").to_pandas()
    t = t[(t.site == site) & t.x.notna() & t.y.notna()]
    if lo:
        t = t[t[time_col] >= pd.Timestamp(lo, tz="Asia/Shanghai")]
    if hi:
        t = t[t[time_col] < pd.Timestamp(hi, tz="Asia/Shanghai")]
    return t


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_density_equals_sklearn(sample, kernel):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    kd = ds.density(site="U02", kernel=kernel, bandwidth=4.0, resolution=3.0, from_="2025-06-01", to="2025-09-01").to_pandas()
    assert len(kd) == 20 * 20
    inc = points(path, "incidents", "U02", "occurred_at", "2025-06-01", "2025-09-01")
    X = inc[["x", "y"]].to_numpy()
    skl = KernelDensity(kernel=kernel, bandwidth=4.0).fit(X)
    want = np.exp(skl.score_samples(kd[["x", "y"]].to_numpy()))
    np.testing.assert_allclose(kd.density.to_numpy(), want, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(kd.intensity.to_numpy(), want * len(X), rtol=1e-6, atol=1e-12)


def test_weighted_density_and_scott_bandwidth_equal_sklearn(sample, tmp_path):
    # Lost-time injuries are rare in the sample (as in a real plant): the
    # weights here are lost days drawn for a third of the incidents, written
    # into a copy of the sample.
    src, _ = sample
    path = tmp_path / "weighted"
    shutil.copytree(src, path)
    t = pq.read_table(path / "incidents.parquet")
    rng = np.random.default_rng(7)
    days = np.where(rng.random(t.num_rows) < 1 / 3, rng.integers(1, 120, t.num_rows), 0)
    col = t.schema.get_field_index("lost_days")
    lost = pa.array([int(d) if d > 0 else None for d in days], type=t.schema.field(col).type)
    pq.write_table(t.set_column(col, t.schema.field(col), lost), path / "incidents.parquet")
    ds = safetyscope.Dataset.open(path)
    kd = ds.density(site="U01", weight="lost_days", resolution=5.0).to_pandas()
    inc = points(path, "incidents", "U01", "occurred_at")
    w = inc.lost_days.fillna(0).to_numpy(float)
    keep = w > 0
    X, w = inc[["x", "y"]].to_numpy()[keep], w[keep]
    # Scott's rule scaled by the weighted spread, effective n = (Σw)² / Σw².
    mx, my = np.average(X[:, 0], weights=w), np.average(X[:, 1], weights=w)
    sigma = np.sqrt((np.average((X[:, 0] - mx) ** 2, weights=w) + np.average((X[:, 1] - my) ** 2, weights=w)) / 2)
    n_eff = w.sum() ** 2 / (w ** 2).sum()
    h = sigma * n_eff ** (-1 / 6)
    assert kd.bandwidth.iloc[0] == pytest.approx(h, rel=1e-12)
    skl = KernelDensity(kernel="gaussian", bandwidth=h).fit(X, sample_weight=w)
    want = np.exp(skl.score_samples(kd[["x", "y"]].to_numpy()))
    np.testing.assert_allclose(kd.density.to_numpy(), want, rtol=1e-6, atol=1e-12)
    assert kd.points.iloc[0] == pytest.approx(w.sum())


def test_positions_and_errors(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    kd = ds.density(source="positions", site="U03", kernel="epanechnikov", bandwidth=6.0, resolution=2.0)
    assert kd.num_rows == 900 and kd.plot() is not None
    with pytest.raises(safetyscope.OptionError, match="weight"):
        ds.density(weight="nope")
    with pytest.raises(safetyscope.OptionError, match="resolution"):
        ds.density(resolution=0.0)


def test_a_density_too_large_to_sum_exactly_is_refused(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    # 1,440,000 raster cells × 4,032 position fixes: past the documented
    # bound of 2 × 10⁹ kernel evaluations.
    with pytest.raises(safetyscope.OptionError, match="kernel evaluations.*coarser resolution"):
        ds.density(source="positions", site="U01", resolution=0.05, bandwidth=5.0)
    kd = ds.density(source="positions", site="U01", resolution=2.0, bandwidth=5.0)
    assert kd.num_rows == 900


def test_density_of_a_hundred_thousand_points_equals_sklearn(tmp_path):
    # 30 tracked people at one site for 28 days: 120,960 position fixes,
    # 900 raster cells: 1.1 × 10⁸ kernel evaluations, summed exactly.
    out = tmp_path / "tracked"
    safetyscope.generate_sample(out, scale=3.0, sites=1, seed=2)
    ds = safetyscope.Dataset.open(out)
    kd = ds.density(source="positions", site="U01", bandwidth=5.0, resolution=2.0).to_pandas()
    pos = pq.read_table(out / "positions.parquet").to_pandas()
    X = pos[["x", "y"]].to_numpy()
    assert len(X) > 100_000
    skl = KernelDensity(kernel="gaussian", bandwidth=5.0).fit(X)
    want = np.exp(skl.score_samples(kd[["x", "y"]].to_numpy()))
    np.testing.assert_allclose(kd.density.to_numpy(), want, rtol=1e-6, atol=1e-12)
    assert kd.points.iloc[0] == len(X)
