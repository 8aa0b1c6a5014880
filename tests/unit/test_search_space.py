"""Search-space files: grids expand, mistakes are one line and exit 2, compile takes them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.steps.search_space import load_search_space

GOOD = """
metric: rmse
thresholds: ["r2>=0.2"]
min_improvement: 0.5
candidates:
  - family: random_forest
    params: {n_estimators: 20, max_depth: [3, 5, 8]}
  - name: boost
    family: gradient_boosting
    params: {learning_rate: [0.05, 0.1], max_iter: [50, 100]}
  - family: random_forest
    params: {n_estimators: 20, max_depth: 3}
  - family: sklearn.linear_model:Ridge
    params: {alpha: [1.0]}
"""


def _write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_grid_expands_to_uniquely_named_candidates(tmp_path):
    space = load_search_space(_write(tmp_path, GOOD))
    names = [c["name"] for c in space.candidates]
    assert names == [
        "random_forest-max_depth3",
        "random_forest-max_depth5",
        "random_forest-max_depth8",
        "boost-learning_rate0.05-max_iter50",
        "boost-learning_rate0.05-max_iter100",
        "boost-learning_rate0.1-max_iter50",
        "boost-learning_rate0.1-max_iter100",
        "random_forest",
        "Ridge",
    ]
    assert space.candidates[1]["params"] == {"n_estimators": 20, "max_depth": 5}
    assert space.candidates[-1]["params"] == {"alpha": 1.0}
    assert space.pipeline_arguments() == {
        "candidates": space.candidates,
        "primary_metric": "rmse",
        "thresholds": ["r2>=0.2"],
        "min_improvement": 0.5,
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("candidates: []", "candidates is empty"),
        ("candidates: [{family: svm}]", "unknown family 'svm'"),
        ("candidates: [{family: linear, params: {bogus: 1}}]", "does not accept: bogus"),
        ("candidates: [{family: linear, params: {alpha: []}}]", "alpha is an empty list"),
        (
            "max_candidates: 2\ncandidates: [{family: linear, params: {alpha: [1, 2, 3]}}]",
            "expand to 3 candidates, more than max_candidates=2",
        ),
        ("candidates: [{family: linear}]\nmetric: r3", "'r3' is not a"),
        ("candidates: [{family: linear, paramz: {}}]", "candidates.0.paramz: Extra inputs"),
        ("candidates: [{family: linear, params: {max_iter: -5}}]", "max_iter"),
        ("- just a list", "must be a mapping"),
        ("candidates: [", "not readable YAML"),
    ],
)
def test_mistakes_are_one_line_config_errors(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=fragment) as caught:
        load_search_space(path)
    assert str(caught.value).startswith(f"--search-space {path}: ")
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_search_space(tmp_path / "nope.yaml")


def test_compile_bakes_the_file_into_the_pipeline_defaults(tmp_path):
    output = tmp_path / "pipeline.yaml"
    cli = [sys.executable, "-c", "from kfp_mlflow.cli import main; main()"]
    done = subprocess.run(
        [*cli, "compile", "--search-space", str(_write(tmp_path, GOOD)), "-o", str(output)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(output.read_text().split("\n---\n")[0])
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    candidates = parameters["candidates"]["defaultValue"]
    assert len(candidates) == 9
    assert candidates[0]["params"] == {"n_estimators": 20, "max_depth": 3}
    assert parameters["primary_metric"]["defaultValue"] == "rmse"
    assert parameters["thresholds"]["defaultValue"] == ["r2>=0.2"]
    bad = _write(tmp_path, "candidates: [{family: linear, params: {bogus: 1}}]")
    refused = subprocess.run(
        [*cli, "compile", "--search-space", str(bad), "-o", str(output)],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "does not accept: bogus" in refused.stderr + refused.stdout
