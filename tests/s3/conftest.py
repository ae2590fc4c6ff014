"""Fixtures of the object-store tests: the CLI, a local S3-compatible
server (moto) on a free port of 127.0.0.1, and the environment that points
the CLI and the Python package at it."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
from typing import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bin", required=True, help="path of the safetyscope CLI")


@pytest.fixture(scope="session")
def cli(request: pytest.FixtureRequest) -> str:
    return str(pathlib.Path(request.config.getoption("--bin")).resolve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_env() -> Iterator[dict[str, str]]:
    """A moto S3 server; yields the AWS_* variables that reach it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "safetyscope-test",
        "AWS_SECRET_ACCESS_KEY": "safetyscope-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT": f"http://127.0.0.1:{port}",
        "AWS_ALLOW_HTTP": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture(scope="session")
def s3(s3_env: dict[str, str]):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT"],
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        region_name=s3_env["AWS_REGION"],
    )


@pytest.fixture(scope="session")
def sample(cli: str, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("sample")
    subprocess.run([cli, "generate", "--out", str(d), "--scale", "0.3", "--seed", "7"], check=True, capture_output=True)
    return d


@pytest.fixture(autouse=True, scope="session")
def _quiet_server_log() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
