"""What flows between steps: small, typed, versioned records carried in artifact metadata.

Each edge of a pipeline is an artifact (a Parquet dataset, an MLflow model directory, an
evaluation, a decision). The file holds the payload; the artifact's metadata holds one of the
records below, stamped with its contract name and version (``"contract": "kfp_mlflow.model/v1"``).
A record is written with :meth:`Contract.write` and read with :meth:`Contract.read` — one writer,
one reader — and reading an artifact that lacks a required field fails with one line naming the
field, the input and the step that should have produced it.

A user's own step conforms by writing the same record, e.g. a training component ends with
``ModelInfo(...).write(model)`` (or :func:`kfp_mlflow.publish_model`, which also logs the model
to MLflow). The records are duck-typed on the artifact (anything with a ``metadata`` dict), so
this module never imports kfp.

Artifact metadata travels as a protobuf ``Struct``: every number becomes a double. Typed fields
restore integers on read (``seed: int``); free-form hyperparameters go through
:func:`restore_ints`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kfp_mlflow.core.exceptions import ContractError

Direction = Literal["min", "max"]
# The one definition of the task types (settings, datasets, families and the CLI use this one).
TaskType = Literal["regression", "classification"]

CONTRACT_KEY = "contract"

C = TypeVar("C", bound="Contract")


class HasMetadata(Protocol):
    """A KFP artifact as steps see it (``Input[...]``/``Output[...]``): a path and metadata."""

    metadata: dict[str, Any]


def restore_ints(value: Any) -> Any:
    """Undo the protobuf ``Struct`` round trip: ``200.0`` back to ``200`` (recursively)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: restore_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [restore_ints(item) for item in value]
    return value


class Contract(BaseModel):
    """Base of every record that travels in artifact metadata."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: ``<name>/v<major>``; a reader accepts its own major version only.
    CONTRACT: ClassVar[str]
    #: The step that writes this record in the reference pipelines (named in errors).
    PRODUCER: ClassVar[str]

    def write(self, artifact: HasMetadata) -> None:
        """Stamp this record into ``artifact.metadata``."""
        artifact.metadata.update(self.as_metadata())

    def as_metadata(self) -> dict[str, Any]:
        return {CONTRACT_KEY: self.CONTRACT, **self.model_dump(mode="json", exclude_none=True)}

    @classmethod
    def read(cls: type[C], artifact: HasMetadata, *, input_name: str, consumer: str) -> C:
        """The record on ``artifact``; a one-line :class:`ContractError` when it is not there."""
        return cls.from_metadata(dict(artifact.metadata), input_name=input_name, consumer=consumer)

    @classmethod
    def from_metadata(
        cls: type[C], metadata: dict[str, Any], *, input_name: str, consumer: str
    ) -> C:
        where = f"{consumer}: input {input_name!r}"
        stamped = metadata.get(CONTRACT_KEY)
        if stamped is None:
            raise ContractError(
                f"{where} carries no {cls.CONTRACT} record (written by {cls.PRODUCER})",
                hint=f"connect it to {cls.PRODUCER}'s output, or write the record with "
                f"kfp_mlflow.core.contracts.{cls.__name__}(...).write(artifact)",
            )
        if stamped != cls.CONTRACT:
            raise ContractError(
                f"{where} carries {stamped!r}, expected {cls.CONTRACT!r}",
                hint="connect the output of the step that produces it, or upgrade the producer",
            )
        try:
            return cls.model_validate(metadata)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "?"
            problem = "is missing" if first["type"] == "missing" else f"is invalid: {first['msg']}"
            raise ContractError(
                f"{where}: field {field!r} of {cls.CONTRACT} {problem} "
                f"(it is written by {cls.PRODUCER})",
                hint=f"fix the producing step so it writes {cls.__name__}.{field}",
            ) from None


class DatasetInfo(Contract):
    """A tabular split written as Parquet (``Output[Dataset]``)."""

    CONTRACT: ClassVar[str] = "kfp_mlflow.dataset/v1"
    PRODUCER: ClassVar[str] = "preprocess"

    role: str = Field(description="train, test or another name the producer chose")
    rows: int
    target: str
    task: TaskType
    columns: dict[str, str] = Field(description="column → dtype, target included")
    digest: str = Field(description="content digest of the whole dataset the split came from")
    source: str = Field(description="URI the data was read from")
    seed: int
    test_size: float | None = Field(default=None, description="held-out fraction of the split")
    snapshot_uri: str | None = Field(
        default=None,
        description="immutable copy of the exact rows read (kfp_mlflow.tracking.snapshots)",
    )
    baseline: dict[str, float] = Field(
        default_factory=dict,
        description="metrics on the test split of a model that learned nothing (train mean or "
        "class prior); a candidate must beat them",
    )


class ModelInfo(Contract):
    """A trained model: an MLflow model directory (``Output[Model]``)."""

    CONTRACT: ClassVar[str] = "kfp_mlflow.model/v1"
    PRODUCER: ClassVar[str] = "train"

    candidate: str = Field(description="name of the candidate, unique within a pipeline run")
    family: str
    task: TaskType
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    flavor: str = Field(description="MLflow flavor the directory was saved with (sklearn, ...)")
    train_run_id: str = Field(description="MLflow run of the task that trained it")
    model_id: str | None = Field(
        default=None, description="MLflow LoggedModel the directory was uploaded as"
    )

    _ints = field_validator("params")(restore_ints)


class EvaluationInfo(Contract):
    """One candidate scored on held-out data.

    The ``test_*`` fields and ``metric_specs`` were added to ``kfp_mlflow.evaluation/v1``
    compatibly (all optional): a record written before them still reads, and ``register`` then
    says its decision could not be like for like and why. With them, ``register`` needs nothing
    but the evaluations to meet ``@champion`` on the very rows the candidates were scored on,
    re-measuring a custom primary metric from its import path.
    """

    CONTRACT: ClassVar[str] = "kfp_mlflow.evaluation/v1"
    PRODUCER: ClassVar[str] = "evaluate"

    candidate: str
    family: str
    task: TaskType
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    metrics: dict[str, float]
    directions: dict[str, Direction] = Field(
        description="for each metric, which way is better (custom metrics declare their own)"
    )
    train_run_id: str
    evaluate_run_id: str
    model_id: str | None = None
    dataset_digest: str
    baseline: dict[str, float] = Field(
        default_factory=dict, description="the test split's baseline metrics (DatasetInfo)"
    )
    # How to rebuild the data side (from DatasetInfo): what `reproduce` needs.
    target: str | None = None
    test_size: float | None = None
    snapshot_uri: str | None = None
    # The exact rows this candidate was scored on, kept in MLflow's artifact store by evaluate:
    # what register re-reads to meet @champion like for like (kfp_mlflow.registry.head_to_head).
    test_rows_uri: str | None = Field(
        default=None, description="runs:/... of the scored test split (Parquet) as evaluate read it"
    )
    test_digest: str | None = Field(
        default=None, description="content digest of those rows (kfp_mlflow.data.datasets.digest)"
    )
    test_rows: int | None = Field(default=None, description="how many rows were scored")
    metric_specs: list[dict[str, str]] = Field(
        default_factory=list,
        description="the custom metrics as evaluate was given them (name, function import path, "
        "direction, uses), so register can re-measure them on @champion",
    )

    _ints = field_validator("params")(restore_ints)


class Decision(Contract):
    """What register decided (``Output[Artifact]`` named ``decision``)."""

    CONTRACT: ClassVar[str] = "kfp_mlflow.decision/v1"
    PRODUCER: ClassVar[str] = "register"

    model_name: str
    metric: str
    direction: Direction
    candidates: list[dict[str, Any]]
    winner: str | None = None
    registered_version: str | None = None
    created: bool = False
    promoted: bool = False
    champion_version: str | None = None
    previous_champion: str | None = None
    reason: str = ""
    rejected: dict[str, str] = Field(default_factory=dict)
    mlflow_run_url: str | None = None
    head_to_head: dict[str, Any] | None = Field(
        default=None,
        description="the registered version against @champion on its test rows "
        "(kfp_mlflow.registry.head_to_head.HeadToHead; verdict unmeasured, with why, when it "
        "could not be on the same rows); None when there was no champion",
    )


class Reproduction(Contract):
    """A registered version rebuilt from its recipe and compared (``compare``)."""

    CONTRACT: ClassVar[str] = "kfp_mlflow.reproduction/v1"
    PRODUCER: ClassVar[str] = "compare"

    model_name: str
    version: str
    max_abs_diff: float
    rows: int
    compared: str = Field(description="probabilities or predictions")
    environment_differs: dict[str, str] = Field(default_factory=dict)
    run_id: str


#: Every contract by its stamped name, for readers that meet an artifact of unknown kind.
CONTRACTS: dict[str, type[Contract]] = {
    c.CONTRACT: c for c in (DatasetInfo, ModelInfo, EvaluationInfo, Decision, Reproduction)
}


class Predictions(Contract):
    """A dataset scored by one registered version (``batch_predict``'s ``predictions``)."""

    CONTRACT: ClassVar[str] = "kfp_mlflow.predictions/v1"
    PRODUCER: ClassVar[str] = "batch_predict"

    model_name: str
    version: str = Field(description="the immutable version that scored every row")
    alias: str | None = Field(default=None, description="the alias it was resolved from, once")
    model_uri: str
    task: TaskType
    data: str = Field(description="URI of the scored dataset")
    digest: str = Field(description="content digest of the scored rows, computed chunk by chunk")
    rows: int
    seconds: float
    rows_per_second: float
    columns: list[str] = Field(description="columns of the predictions file")
    key_columns: list[str] = Field(default_factory=list)
    ignored_columns: list[str] = Field(
        default_factory=list, description="input columns the model does not use, not scored"
    )
    drift: dict[str, float] = Field(
        default_factory=dict, description="PSI per feature and for the prediction"
    )
    unseen: dict[str, float] = Field(
        default_factory=dict, description="share of unseen categories per categorical feature"
    )
    drift_threshold: float | None = None
    drift_detected: bool = False
    drifted: list[str] = Field(default_factory=list)
    drift_reference: str | None = Field(
        default=None, description="the training data the drift is measured against, or why none"
    )
    run_id: str


CONTRACTS[Predictions.CONTRACT] = Predictions
