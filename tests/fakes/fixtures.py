"""Pytest fixtures for the remote (KFP API) tests: a running fake API and small compiled packages.

Import them into a test module with ``from tests.fakes.fixtures import *  # noqa: F403``.
"""

# No `from __future__ import annotations`: kfp reads the component annotations as types.

from collections.abc import Iterator
from pathlib import Path

import pytest

from kfp_mlflow.core.settings import Settings
from kfp_mlflow.remote import KfpConnection
from tests.fakes.kfp_api import FakeKfpApi

__all__ = ["changed_package", "conn", "fake_kfp", "settings", "tiny_package"]


def compile_tiny(path: Path, default_n: int = 1) -> Path:
    """A two-task pipeline declaring every parameter type the CLI parses."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def square(n: int) -> int:
        return n * n

    @dsl.pipeline(name="tiny-training")
    def tiny(
        n: int = default_n,
        rate: float = 0.5,
        flag: bool = False,
        items: list = [1],  # noqa: B006
        options: dict = {},  # noqa: B006
        label: str = "x",
        experiment_name: str = "kfp-mlflow",
    ) -> None:
        first = square(n=n).set_display_name("preprocess")
        square(n=first.output).set_display_name("train")

    compiler.Compiler().compile(tiny, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_tiny(tmp_path_factory.mktemp("pkg") / "tiny.yaml")


@pytest.fixture(scope="session")
def changed_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_tiny(tmp_path_factory.mktemp("pkg2") / "tiny.yaml", default_n=2)


@pytest.fixture
def fake_kfp() -> Iterator[FakeKfpApi]:
    with FakeKfpApi() as fake:
        yield fake


@pytest.fixture
def settings(fake_kfp: FakeKfpApi) -> Settings:
    return Settings(kfp_host=fake_kfp.url, kfp_request_timeout=5)


@pytest.fixture
def conn(settings: Settings) -> KfpConnection:
    return KfpConnection.from_settings(settings)
