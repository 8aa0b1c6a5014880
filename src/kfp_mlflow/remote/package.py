"""A compiled pipeline package (KFP IR YAML): its name, declared parameters and content digest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.dsl.compiling import spec_digest

# KFP IR parameter types (pipeline_spec.proto ParameterType) → what a CLI string becomes.
_TYPE_NAMES = {
    "STRING": "str",
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "BOOLEAN": "bool",
    "LIST": "list (JSON)",
    "STRUCT": "dict (JSON)",
}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class PipelinePackage:
    """A compiled pipeline: ``path``, the parsed YAML documents and what submit needs from them."""

    path: Path
    documents: tuple[dict[str, Any], ...]

    @classmethod
    def load(cls, path: Path) -> PipelinePackage:
        import yaml

        try:
            docs = tuple(d for d in yaml.safe_load_all(Path(path).read_text()) if d)
        except FileNotFoundError as error:
            raise ConfigError(f"pipeline package {path} does not exist") from error
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read pipeline package {path}: {error}") from error
        if not docs or "pipelineInfo" not in docs[0] or "root" not in docs[0]:
            raise ConfigError(
                f"{path} is not a compiled KFP pipeline (no pipelineInfo/root)",
                hint="compile it with `kfp-mlflow compile` or pass no --package",
            )
        return cls(Path(path), docs)

    @property
    def spec(self) -> dict[str, Any]:
        return self.documents[0]

    @property
    def name(self) -> str:
        return str(self.spec["pipelineInfo"]["name"])

    @property
    def description(self) -> str:
        return str(self.spec["pipelineInfo"].get("description", ""))

    @property
    def digest(self) -> str:
        """SHA-256 of the pipeline and platform specs (see kfp_mlflow.dsl.compiling.spec_digest)."""
        platform = self.documents[1] if len(self.documents) > 1 else None
        return spec_digest(self.spec, platform)

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """Declared pipeline parameters: name → {parameterType, defaultValue?, isOptional?}."""
        definitions = self.spec["root"].get("inputDefinitions", {})
        return dict(definitions.get("parameters", {}))

    def parse_arguments(self, pairs: list[str] | dict[str, Any]) -> dict[str, Any]:
        """``key=value`` strings (or a dict) → arguments typed as the pipeline declares them.

        Unknown names are an error that names them all; so is a value of the wrong type.
        """
        declared = self.parameters
        raw = dict(_split_pair(p) for p in pairs) if isinstance(pairs, list) else dict(pairs)
        unknown = sorted(set(raw) - set(declared))
        if unknown:
            raise ConfigError(
                f"unknown pipeline parameter(s): {', '.join(unknown)}",
                hint=f"{self.name} declares: {', '.join(sorted(declared))}",
            )
        return {
            name: _coerce(name, value, declared[name].get("parameterType", "STRING"))
            for name, value in raw.items()
        }


def _split_pair(pair: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"--param expects key=value, got {pair!r}")
    return name.strip(), value


def _coerce(name: str, value: Any, kind: str) -> Any:
    if not isinstance(value, str):
        return value  # the Python API passes typed values through; the server checks them
    try:
        if kind == "NUMBER_INTEGER":
            return int(value)
        if kind == "NUMBER_DOUBLE":
            return float(value)
        if kind == "BOOLEAN":
            lowered = value.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError(value)
        if kind in ("LIST", "STRUCT"):
            parsed = json.loads(value)
            if not isinstance(parsed, list if kind == "LIST" else dict):
                raise ValueError(value)
            return parsed
    except ValueError as error:
        raise ConfigError(
            f"pipeline parameter {name}={value!r} is not a {_TYPE_NAMES.get(kind, kind)}",
            hint="lists and dicts are JSON, e.g. thresholds='[\"r2>=0.3\"]'",
        ) from error
    return value


def version_name(package_version: str, digest: str) -> str:
    """The pipeline version for a package: ``<package version>-<12 hex of the spec digest>``.

    The same code compiles to the same spec, so resubmitting reuses the version; any change to
    the spec (code, image, defaults) makes a new one. Lowercase, digits, dots and dashes only:
    a valid Kubernetes name for Kubernetes-native pipeline stores too.
    """
    safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in package_version.lower())
    return f"{safe.strip('.-') or 'v'}-{digest[:12]}"
