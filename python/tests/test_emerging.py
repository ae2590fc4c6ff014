"""Emerging hot spots: the Mann-Kendall statistics equal pymannkendall on the
Gi* z-score series, and the categories follow the documented rules."""

from __future__ import annotations

import numpy as np
import pymannkendall as mk
import pytest
from esda.getisord import G_Local
from libpysal.weights import lat2W

import pyarrow.parquet as pq
import pandas as pd
import safetyscope


def test_mann_kendall_on_gi_z_series_equals_pymannkendall(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    em = ds.emerging_hotspots(site="U01", from_="2025-01-01", to="2026-01-01").to_pandas().sort_values(["row", "col"])
    assert len(em) == 36 and (em.slices == 12).all()
    # Independent: monthly counts per cell, Gi* per month with esda, MK with pymannkendall.
    inc = pq.read_table(path / "incidents.parquet").to_pandas()
    inc = inc[(inc.site == "U01") & (inc.occurred_at >= pd.Timestamp("2025-01-01", tz="Asia/Shanghai")) & (inc.occurred_at < pd.Timestamp("2026-01-01", tz="Asia/Shanghai"))]
    # Local months: an event just after local midnight on the 1st is in the UTC month before.
    inc["month"] = inc.occurred_at.dt.tz_convert("Asia/Shanghai").dt.month
    cells = [f"U01-{r}{c}" for r in "ABCDEF" for c in range(1, 7)]
    counts = inc.groupby(["cell", "month"]).size().unstack(fill_value=0).reindex(index=cells, columns=range(1, 13), fill_value=0)
    w = lat2W(6, 6, rook=False)
    z = np.column_stack([G_Local(counts[m].to_numpy(float), w, transform="B", star=True, permutations=0).Zs for m in range(1, 13)])
    # Months with the same counts around a cell have the same z-score by
    # definition, though esda's sums can leave them apart in the last bits:
    # rounded to 12 decimals they tie, as the core's Mann-Kendall counts them.
    z = np.round(np.nan_to_num(z), 12)
    for i, cell in enumerate(cells):
        r = mk.original_test(z[i])
        row = em[em.cell == cell].iloc[0]
        assert row.mk_s == pytest.approx(r.s, abs=1e-9)
        assert row.mk_z == pytest.approx(r.z, abs=1e-9)
        assert row.mk_p_value == pytest.approx(r.p, abs=1e-9)
        assert row.last_z == pytest.approx(z[i, -1], abs=1e-6)
    assert em.events.sum() == len(inc)


def test_categories_follow_the_history(sample):
    path, _ = sample
    em = safetyscope.Dataset.open(path).emerging_hotspots(to="2026-01-01", slice="month").to_pandas()
    for _, r in em.iterrows():
        h = r.history
        assert len(h) == r.slices
        if r.category == "new":
            assert h.endswith("H") and h.count("H") == 1
        if r.category in ("persistent", "intensifying", "diminishing"):
            assert h.endswith("H") and h.count("H") >= 0.9 * len(h)
        if r.category == "historical":
            assert not h.endswith("H")
    with pytest.raises(safetyscope.OptionError, match="slice"):
        safetyscope.Dataset.open(path).emerging_hotspots(from_="2025-12-01", to="2026-01-01")
