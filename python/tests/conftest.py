"""Shared fixtures: one small generated sample per test session."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import safetyscope

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sample")
    truth = safetyscope.generate_sample(out, scale=0.1, sites=3, seed=11)
    return out, truth


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO
