"""One extension mechanism: built-ins, entry points of installed distributions and import paths
resolve alike, for backends and scorer adapters as for families (tests/unit/test_families.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.extensions import BACKENDS, load_object
from kfp_mlflow.models.families import SCORERS, Family, get_family

PLUGIN = """
class Backend:
    name = "plugin"

BACKEND = Backend()

def load_scorer(model_dir):
    return ("scorer for", model_dir)
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed distribution (package + dist-info), found by importlib.metadata."""
    (tmp_path / "kfpm_ext.py").write_text(PLUGIN)
    info = tmp_path / "kfpm_ext-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kfpm-ext\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""
        [kfp_mlflow.backends]
        plugin = kfpm_ext:BACKEND
        sklearn = kfpm_ext:BACKEND

        [kfp_mlflow.scorer_adapters]
        myflavor = kfpm_ext:load_scorer
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_entry_points_and_import_paths_resolve_alike(plugin: Path) -> None:
    with pytest.warns(UserWarning, match=r"'sklearn'.*ignored.*already defined"):
        backends = BACKENDS.entries()
    assert backends["sklearn"] == "kfp_mlflow.models.sklearn_backend:SKLEARN"  # the built-in wins
    assert backends["plugin"] == "kfpm_ext:BACKEND"  # not imported until used
    assert BACKENDS.resolve("plugin", backends) == "kfpm_ext:BACKEND"
    assert BACKENDS.resolve("kfpm_ext:BACKEND") == "kfpm_ext:BACKEND"
    assert BACKENDS.resolve("nope", backends) is None
    assert SCORERS.entries()["myflavor"] == "kfpm_ext:load_scorer"
    assert load_object(SCORERS.entries()["myflavor"], "scorer")("d") == ("scorer for", "d")


# The first test checks that warning; each scan here repeats it.
@pytest.mark.filterwarnings("ignore:kfp_mlflow.backends entry point 'sklearn'")
def test_a_family_names_its_backend_by_name_or_import_path(plugin: Path) -> None:
    linear = get_family("linear")
    by_name = linear.model_copy(update={"backend": "plugin"})
    by_path = linear.model_copy(update={"backend": "kfpm_ext:BACKEND"})
    unknown: Family = linear.model_copy(update={"backend": "nope"})
    assert by_name.get_backend() is by_path.get_backend()
    assert type(by_name.get_backend()).__name__ == "Backend"
    with pytest.raises(ConfigError, match="unknown backend"):
        unknown.get_backend()


def test_an_import_path_that_does_not_import_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        load_object("no_such_module_xyz:thing", "function of 'm'", section="metrics")
    assert raised.value.message.startswith("metrics: ")
    with pytest.raises(ConfigError):
        load_object("not-an-import-path", "backend")
