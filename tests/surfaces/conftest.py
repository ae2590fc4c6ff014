"""Options of the cross-surface tests: the CLI binary, the WASM bindings
(wasm-bindgen --target web output) and the sample dataset."""

from __future__ import annotations

import pathlib

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bin", required=True, help="path of the safetyscope CLI")
    parser.addoption("--pkg", required=True, help="WASM bindings directory")
    parser.addoption("--sample", required=True, help="sample dataset directory")


@pytest.fixture(scope="session")
def cli(request: pytest.FixtureRequest) -> str:
    return str(pathlib.Path(request.config.getoption("--bin")).resolve())


@pytest.fixture(scope="session")
def pkg(request: pytest.FixtureRequest) -> pathlib.Path:
    return pathlib.Path(request.config.getoption("--pkg")).resolve()


@pytest.fixture(scope="session")
def sample(request: pytest.FixtureRequest) -> pathlib.Path:
    return pathlib.Path(request.config.getoption("--sample")).resolve()
