"""`safetyscope.draft_mapping`: a draft that loads the file it was made
from, with the traps of day-first / month-first dates flagged."""

from __future__ import annotations

import pathlib

import pytest

import safetyscope


def test_a_draft_flags_dates_the_sample_cannot_tell_apart(tmp_path: pathlib.Path) -> None:
    # No day above 12: month-first and day-first both read every value.
    rows = ["Crash ID,Crash Date,Latitude,Longitude,Borough,Persons Injured"]
    for i in range(60):
        rows.append(f"C{i},{1 + i % 12:02d}/{1 + i % 9:02d}/2023,{40.6 + i * 0.001:.4f},{-73.9 - i * 0.001:.4f},QUEENS,{i % 3}")
    (tmp_path / "crashes.csv").write_text("\n".join(rows) + "\n")
    text = safetyscope.draft_mapping(tmp_path / "crashes.csv", table="incidents", mapping_dir=tmp_path)
    assert 'path = "crashes.csv"' in text
    assert 'occurred_at = { column = "Crash Date", formats = ["%m/%d/%Y"] }' in text
    assert "EDIT: `%d/%m/%Y` reads the sample too, differently" in text
    assert 'coordinates = "lonlat"' in text and "[[grid]]" in text
    assert 'id = "Crash ID"' in text and 'zone = "Borough"' in text
    (tmp_path / "crashes.toml").write_text(text)
    ds = safetyscope.Dataset.open(tmp_path / "crashes.toml")
    rep = ds.validation.tables["incidents"]
    assert rep["rows_accepted"] == 60
    # Dates only: every row is time-unknown, and the report says why.
    assert rep["time_unknown"] == rep["date_only"] == 60


def test_an_unknown_table_is_an_option_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(safetyscope.OptionError, match="unknown table `accidents`"):
        safetyscope.draft_mapping(tmp_path / "a.csv", table="accidents")
    with pytest.raises(safetyscope.NotFoundError):
        safetyscope.draft_mapping(tmp_path / "missing.csv")
