"""Options of the cluster tests: the safetyscope CLI and the
safetyscope-cluster binary."""

from __future__ import annotations

import pathlib

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bin", required=True, help="path of the safetyscope CLI")
    parser.addoption("--cluster-bin", required=True, help="path of the safetyscope-cluster binary")


@pytest.fixture(scope="session")
def cli(request: pytest.FixtureRequest) -> str:
    return str(pathlib.Path(request.config.getoption("--bin")).resolve())


@pytest.fixture(scope="session")
def cluster_bin(request: pytest.FixtureRequest) -> str:
    return str(pathlib.Path(request.config.getoption("--cluster-bin")).resolve())
