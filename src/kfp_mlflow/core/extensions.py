"""One extension mechanism: a :class:`Registry` per kind of extension, fed alike by built-ins,
by installed distributions' entry points and by ``module:attribute`` import paths.

    kind                entry-point group               a name is also ...
    model families      ``kfp_mlflow.families``         ``module:Class`` of an estimator
    backends            ``kfp_mlflow.backends``         ``module:attribute`` of a Backend
    scorer adapters     ``kfp_mlflow.scorer_adapters``  (keyed by MLflow flavor)
    metric functions    (import paths, in a metrics file)

A distribution declares its extensions in its own pyproject, nothing here is edited::

    [project.entry-points."kfp_mlflow.backends"]
    my_backend = "my_pkg.backend:BACKEND"

One broken plugin must not break every run: its entry point is skipped with a warning naming it.
Built-ins win over plugins of the same name.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from kfp_mlflow.core.exceptions import ConfigError

T = TypeVar("T")


def load_object(reference: str, what: str, *, section: str = "candidates") -> Any:
    """The object a ``module:attribute`` import path names; a ConfigError naming ``what`` (and
    the ``section`` of the user's input it came from) when it cannot be imported."""
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise ConfigError(f"{section}: {what}: {reference!r} is not an import path module:Name")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError as error:
        raise ConfigError(
            f"{section}: {what}: cannot import {module!r} ({error})",
            hint=f"pip install the package that provides {module}",
        ) from error
    except AttributeError:
        raise ConfigError(f"{section}: {what}: {module!r} has no {attribute!r}") from None


def is_import_path(name: str) -> bool:
    return ":" in name


@dataclass(frozen=True)
class Registry(Generic[T]):
    """Named extensions of one kind.

    ``builtins`` gives the built-in entries (a function, so nothing is imported before use);
    ``unpack`` turns one entry point of ``group`` into entries (it may load it, or keep its import
    path for later); ``from_path`` makes an entry from an import path not registered by name.
    """

    kind: str
    group: str
    builtins: Callable[[], Mapping[str, T]]
    unpack: Callable[[metadata.EntryPoint], Mapping[str, T]]
    from_path: Callable[[str], T] | None = None

    def entries(self) -> dict[str, T]:
        """Built-in entries, then those installed distributions declare (built-ins win)."""
        found = dict(self.builtins())
        for entry_point in metadata.entry_points(group=self.group):
            try:
                declared = self.unpack(entry_point)
                clash = sorted(set(declared) & set(found))
                if clash:
                    raise ValueError(f"{self.kind} {clash[0]!r} is already defined")
                found.update(declared)
            except Exception as error:  # one broken plugin must not break every run
                warnings.warn(
                    f"{self.group} entry point {entry_point.name!r} ({entry_point.value}) "
                    f"ignored: {type(error).__name__}: {error}",
                    stacklevel=3,
                )
        return found

    def resolve(self, name: str, entries: Mapping[str, T] | None = None) -> T | None:
        """The entry registered as ``name``, else the one its import path makes; None if
        neither (the caller says what is available)."""
        if is_import_path(name):  # never a registered name: no need to scan entry points
            return self.from_path(name) if self.from_path is not None else None
        entries = self.entries() if entries is None else entries
        return entries.get(name)


def by_entry_point_name(entry_point: metadata.EntryPoint) -> dict[str, str]:
    """``unpack`` for registries whose entries stay import paths until used (nothing of the
    plugin is imported just to list what exists)."""
    return {entry_point.name: entry_point.value}


BACKENDS: Registry[str] = Registry(
    kind="backend",
    group="kfp_mlflow.backends",
    builtins=lambda: {
        "sklearn": "kfp_mlflow.models.sklearn_backend:SKLEARN",
        "spark": "kfp_mlflow.models.spark_backend:SPARK",
    },
    unpack=by_entry_point_name,
    from_path=lambda path: path,
)
