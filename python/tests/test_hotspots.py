"""Gi* hot spots against PySAL esda on the sample site and on a real dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from esda.getisord import G_Local
from libpysal.weights import W, lat2W
from statsmodels.stats.multitest import multipletests

import safetyscope


def esda_z(y: np.ndarray, w: W, transform: str) -> np.ndarray:
    g = G_Local(y.astype(float), w, transform=transform, star=True, permutations=0)
    return np.asarray(g.Zs)


@pytest.mark.parametrize("weights,rook", [("queen", False), ("rook", True)])
@pytest.mark.parametrize("transform,esda_transform", [("binary", "B"), ("row", "R")])
def test_z_equals_esda_on_the_sample_site(sample, weights, rook, transform, esda_transform):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    hs = ds.hotspots(site="U01", weights=weights, transform=transform).to_pandas()
    hs = hs.sort_values(["row", "col"]).reset_index(drop=True)
    assert len(hs) == 36
    # Counts per cell computed independently from the raw file, row-major.
    inc = pq.read_table(path / "incidents.parquet").to_pandas()
    counts = inc[inc.site == "U01"].groupby("cell").size()
    y = np.array([counts.get(f"U01-{r}{c}", 0) for r in "ABCDEF" for c in range(1, 7)], dtype=float)
    assert np.array_equal(hs.value.to_numpy(), y)
    z = esda_z(y, lat2W(6, 6, rook=rook), esda_transform)
    np.testing.assert_allclose(hs.z.to_numpy(), z, rtol=0, atol=1e-6)


def test_p_and_q_values_and_classes(sample):
    path, _ = sample
    hs = safetyscope.Dataset.open(path).hotspots().to_pandas()
    from scipy.stats import norm

    p = 2 * norm.sf(np.abs(hs.z.to_numpy()))
    np.testing.assert_allclose(hs.p_value.to_numpy(), p, rtol=1e-9, atol=1e-12)
    q = multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose(hs.q_value.to_numpy(), q, rtol=1e-9, atol=1e-12)
    hot99 = (hs.z > 0) & (hs.q_value <= 0.01)
    assert (hs["class"][hot99] == "hot_99").all()
    assert (hs.confidence[hot99] == 3).all()
    ns = hs.q_value > 0.10
    assert (hs["class"][ns] == "not_significant").all()


def test_distance_band_and_islands_do_not_crash():
    cells = pa.table(
        {
            "cell": ["a", "b", "c", "far"],
            "zone": ["z"] * 4,
            "site": ["S"] * 4,
            "row": pa.array([0, 0, 1, 5], pa.int32()),
            "col": pa.array([0, 1, 0, 5], pa.int32()),
            "x_min": [0.0, 10.0, 0.0, 50.0],
            "y_min": [0.0, 0.0, 10.0, 50.0],
            "x_max": [10.0, 20.0, 10.0, 60.0],
            "y_max": [10.0, 10.0, 20.0, 60.0],
        }
    )
    n = [5, 1, 2, 9]
    cell_col = [c for c, k in zip(["a", "b", "c", "far"], n) for _ in range(k)]
    inc = pa.table(
        {
            "id": [str(i) for i in range(len(cell_col))],
            "occurred_at": ["2025-01-01 08:00"] * len(cell_col),
            "site": ["S"] * len(cell_col),
            "cell": cell_col,
            "category": ["fire"] * len(cell_col),
            "severity": ["minor"] * len(cell_col),
        }
    )
    ds = safetyscope.Dataset.from_tables(incidents=inc, cells=cells)
    hs = ds.hotspots(weights="distance", distance=10.0).to_pandas().set_index("cell")
    assert hs.loc["far", "island"] and hs.loc["far", "class"] == "island"
    assert hs.loc["a", "neighbors"] == 2 and hs.loc["b", "neighbors"] == 1
    # esda with the same neighbour lists (islands allowed).
    w = W({0: [1, 2], 1: [0], 2: [0], 3: []}, silence_warnings=True)
    z = esda_z(np.array(n, float), w, "B")
    np.testing.assert_allclose(hs.loc[["a", "b", "c"], "z"].to_numpy(), z[:3], atol=1e-6)
    with pytest.raises(safetyscope.OptionError, match="distance"):
        ds.hotspots(weights="distance")


def test_permutations_are_seeded_and_close_to_esda(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    a = ds.hotspots(site="U02", permutations=999, seed=3).to_pandas()
    b = ds.hotspots(site="U02", permutations=999, seed=3).to_pandas()
    pd.testing.assert_series_equal(a.p_sim, b.p_sim)
    y = a.sort_values(["row", "col"]).value.to_numpy()
    g = G_Local(y, lat2W(6, 6, rook=False), transform="B", star=True, permutations=9999, seed=1)
    ours = a.sort_values(["row", "col"]).p_sim.to_numpy()
    # Monte Carlo error of two independent runs: a few hundredths at most.
    assert np.max(np.abs(ours - g.p_sim)) < 0.05


def test_police_stops_binned_to_a_grid_equal_esda(repo):
    """A real point dataset binned to a 10 × 10 grid over its extent."""
    t = pq.read_table(repo / "examples/real/police-stops/minneapolis_stops_2017.parquet").to_pandas()
    k = 10
    lat0, lat1, lon0, lon1 = t.lat.min(), t.lat.max(), t.long.min(), t.long.max()
    row = np.minimum(((lat1 - t.lat) / (lat1 - lat0) * k).astype(int), k - 1)  # north at the top
    col = np.minimum(((t.long - lon0) / (lon1 - lon0) * k).astype(int), k - 1)
    t["cell"] = row.astype(str) + "-" + col.astype(str)
    cells = pd.DataFrame(
        {"cell": [f"{r}-{c}" for r in range(k) for c in range(k)], "row": np.repeat(np.arange(k), k).astype("int32"),
         "col": np.tile(np.arange(k), k).astype("int32"), "zone": "city", "site": "MPLS"}
    )
    inc = pd.DataFrame(
        {"id": t.rownames.astype(str), "occurred_at": t.date, "site": "MPLS", "cell": t.cell,
         "category": "other", "severity": "near_miss"}
    )
    ds = safetyscope.Dataset.from_tables(incidents=inc, cells=cells)
    assert ds.validation.tables["incidents"]["rows_accepted"] == len(t)
    hs = ds.hotspots(weights="queen").to_pandas().sort_values(["row", "col"])
    y = t.groupby("cell").size().reindex(cells.cell, fill_value=0).to_numpy().astype(float)
    assert np.array_equal(hs.value.to_numpy(), y)
    z = esda_z(y, lat2W(k, k, rook=False), "B")
    np.testing.assert_allclose(hs.z.to_numpy(), z, rtol=0, atol=1e-6)
    assert (hs["class"] == "hot_99").sum() > 0
