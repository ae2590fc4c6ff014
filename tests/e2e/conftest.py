"""Options and fixtures of the browser tests: the CLI binary, the built
dashboard site, a static server on 127.0.0.1 and headless Debian Chromium."""

from __future__ import annotations

import functools
import http.server
import pathlib
import shutil
import threading
from typing import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bin", required=True, help="path of the safetyscope CLI")
    parser.addoption("--site", required=True, help="built dashboard directory")
    parser.addoption("--sample", required=True, help="sample dataset directory")


@pytest.fixture(scope="session")
def cli(request: pytest.FixtureRequest) -> str:
    return str(pathlib.Path(request.config.getoption("--bin")).resolve())


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest) -> pathlib.Path:
    return pathlib.Path(request.config.getoption("--site")).resolve()


@pytest.fixture(scope="session")
def sample(request: pytest.FixtureRequest) -> pathlib.Path:
    return pathlib.Path(request.config.getoption("--sample")).resolve()


@pytest.fixture(scope="session")
def artifacts() -> pathlib.Path:
    p = pathlib.Path(__file__).resolve().parents[2] / "build" / "artifacts"
    p.mkdir(parents=True, exist_ok=True)
    return p


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm", ".js": "text/javascript"}

    def log_message(self, *args: object) -> None:
        pass


def serve(directory: pathlib.Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/", httpd


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update", "--no-first-run"],
        )
        yield b
        b.close()
