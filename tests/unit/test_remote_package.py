"""Pure pieces of the remote commands: argument parsing, version names, cron, links, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.settings import Settings
from kfp_mlflow.remote import KfpConnection, PipelinePackage, kfp_run_url, version_name
from kfp_mlflow.remote.links import mlflow_runs_search_url
from kfp_mlflow.remote.schedule import normalize_cron
from tests.fakes.fixtures import *  # noqa: F403


def test_params_are_parsed_to_declared_types(tiny_package: Path) -> None:
    pkg = PipelinePackage.load(tiny_package)
    args = pkg.parse_arguments(
        ["n=3", "rate=0.25", "flag=yes", "items=[1, 2]", 'options={"a": 1}', "label=a=b"]
    )
    assert args == {
        "n": 3,
        "rate": 0.25,
        "flag": True,
        "items": [1, 2],
        "options": {"a": 1},
        "label": "a=b",
    }


def test_unknown_params_are_named(tiny_package: Path) -> None:
    pkg = PipelinePackage.load(tiny_package)
    with pytest.raises(ConfigError, match=r"unknown pipeline parameter.*bogus, typo") as info:
        pkg.parse_arguments(["typo=1", "bogus=2", "n=1"])
    assert "declares: " in str(info.value)
    assert "rate" in str(info.value)


@pytest.mark.parametrize("pair", ["n=three", "flag=maybe", "items={}", "rate=", "noequals"])
def test_bad_values_are_refused(tiny_package: Path, pair: str) -> None:
    with pytest.raises(ConfigError):
        PipelinePackage.load(tiny_package).parse_arguments([pair])


def test_digest_ignores_yaml_layout(tiny_package: Path, tmp_path: Path) -> None:
    import yaml

    pkg = PipelinePackage.load(tiny_package)
    relaid = tmp_path / "relaid.yaml"
    relaid.write_text(yaml.safe_dump_all(reversed_keys(pkg.documents), sort_keys=False))
    assert PipelinePackage.load(relaid).digest == pkg.digest


def reversed_keys(docs: tuple[dict, ...]) -> list[dict]:
    def rev(x: object) -> object:
        if isinstance(x, dict):
            return {k: rev(x[k]) for k in reversed(list(x))}
        return x

    return [rev(d) for d in docs]  # type: ignore[misc]


def test_changed_spec_changes_version(tiny_package: Path, changed_package: Path) -> None:
    a, b = PipelinePackage.load(tiny_package), PipelinePackage.load(changed_package)
    assert version_name("0.1.0", a.digest) != version_name("0.1.0", b.digest)
    assert version_name("0.1.0+local", "ab" * 32) == "0.1.0-local-abababababab"


def test_not_a_pipeline(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("a: 1\n")
    with pytest.raises(ConfigError, match="not a compiled KFP pipeline"):
        PipelinePackage.load(bad)


@pytest.mark.parametrize(
    ("given", "sent"),
    [("0 3 * * *", "0 0 3 * * *"), ("30 0 3 * * 1-5", "30 0 3 * * 1-5"), ("@daily", "@daily")],
)
def test_cron_is_sent_with_seconds(given: str, sent: str) -> None:
    assert normalize_cron(given) == sent


def test_cron_with_wrong_field_count() -> None:
    with pytest.raises(ConfigError, match="fields"):
        normalize_cron("0 3 *")


def test_links() -> None:
    assert kfp_run_url("http://kfp/", "r-1") == "http://kfp/#/runs/details/r-1"
    url = mlflow_runs_search_url("http://mlflow", "7", "r-1")
    assert url.startswith("http://mlflow/#/experiments/7?searchFilter=")
    assert "kfp.pipeline_run_id" in url
    assert "r-1" in url


def test_connection_never_shows_the_token() -> None:
    conn = KfpConnection.from_settings(Settings(kfp_host="http://h", kfp_token="s3cret"))
    assert "s3cret" not in repr(conn)
    assert conn.bearer_token() == "s3cret"


def test_flags_override_settings_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_MLFLOW_KFP_HOST", "http://from-env:8080")
    monkeypatch.setenv("KFP_MLFLOW_KFP_NAMESPACE", "team-a")
    conn = KfpConnection.from_settings(Settings())
    assert (conn.host, conn.namespace, conn.ui_url) == (
        "http://from-env:8080",
        "team-a",
        "http://from-env:8080",
    )
    assert KfpConnection.from_settings(Settings(), host="http://flag").host == "http://flag"


def test_no_host_outside_a_pod_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kfp_mlflow.remote.connection.SERVICE_ACCOUNT_DIR", Path("/nonexistent/sa"))
    with pytest.raises(ConfigError, match="no KFP API host"):
        KfpConnection.from_settings(Settings())


def test_in_pod_token_only_goes_to_the_in_cluster_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("pod-token\n")
    (tmp_path / "namespace").write_text("team-b")
    monkeypatch.setattr("kfp_mlflow.remote.connection.SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.setattr("kfp_mlflow.remote.connection.KFP_AUDIENCE_TOKEN", tmp_path / "none")
    in_pod = KfpConnection.from_settings(Settings())
    assert in_pod.host.startswith("http://ml-pipeline.kubeflow.svc")
    assert (in_pod.namespace, in_pod.bearer_token()) == ("team-b", "pod-token")
    elsewhere = KfpConnection.from_settings(Settings(kfp_host="http://outside"))
    assert elsewhere.bearer_token() is None
