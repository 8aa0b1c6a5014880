"""Which server refusals of an alias write are retried: only the alias primary-key collision."""

from __future__ import annotations

import pytest
from mlflow.exceptions import RestException

from kfp_mlflow.registry.promotion import is_alias_write_conflict

# Verbatim from mlflow 3.17 on PostgreSQL 15, six set_registered_model_alias calls released together.
POSTGRES_ALIAS_COLLISION = (
    "(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "
    '"registered_model_alias_pk"\nDETAIL:  Key (workspace, name, alias)=(default, m, champion) '
    "already exists.\n\n[SQL: INSERT INTO registered_model_aliases (workspace, name, alias, "
    "version) VALUES (%(workspace)s, %(name)s, %(alias)s, %(version)s)]"
)

# Verbatim from the race test on SQLite (the local server's store), once in 4 trials.
SQLITE_ALIAS_COLLISION = (
    "(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_aliases.workspace, "
    "registered_model_aliases.name, registered_model_aliases.alias\n[SQL: INSERT INTO "
    "registered_model_aliases (workspace, name, alias, version) VALUES (?, ?, ?, ?)]"
)


def _refusal(error_code: str, message: str) -> RestException:
    return RestException({"error_code": error_code, "message": message})


@pytest.mark.parametrize(
    "message", [POSTGRES_ALIAS_COLLISION, SQLITE_ALIAS_COLLISION], ids=["postgresql", "sqlite"]
)
def test_the_alias_key_collision_is_retryable(message):
    assert is_alias_write_conflict(_refusal("BAD_REQUEST", message))


@pytest.mark.parametrize(
    ("error_code", "message"),
    [
        # Another unique key: not an alias write racing, so not ours to retry.
        (
            "BAD_REQUEST",
            POSTGRES_ALIAS_COLLISION.replace("registered_model_alias_pk", "registered_model_pk"),
        ),
        (
            "BAD_REQUEST",
            "(sqlite3.IntegrityError) UNIQUE constraint failed: registered_models.name",
        ),
        # The alias key named without a uniqueness violation.
        ("BAD_REQUEST", 'foreign key on "registered_model_alias_pk" violated'),
        # Ordinary refusals: a bad alias name (400), a missing version (404).
        ("INVALID_PARAMETER_VALUE", "Invalid alias name: 'v1'. Alias name cannot be a version."),
        ("RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=9) not found"),
        # The same text with a server error status is not the race either.
        ("INTERNAL_ERROR", POSTGRES_ALIAS_COLLISION),
        ("INTERNAL_ERROR", SQLITE_ALIAS_COLLISION),
    ],
    ids=[
        "postgresql-other-key",
        "sqlite-other-key",
        "alias-key-not-unique",
        "bad-alias",
        "missing-version",
        "postgresql-500",
        "sqlite-500",
    ],
)
def test_every_other_refusal_is_not(error_code, message):
    assert not is_alias_write_conflict(_refusal(error_code, message))
