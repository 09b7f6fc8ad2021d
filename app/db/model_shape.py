"""The tables and columns a release's models map, as JSON: what the previous-release gate compares.

A model shape is ``{table: {column: {"nullable": bool, "default": bool}}}``:
``default`` is true when the model gives the column a value of its own on
INSERT (a Python or server default, or an autoincrementing key).

Run as a script inside another checkout, it prints that checkout's shape::

    PYTHONPATH=<checkout> python -P app/db/model_shape.py

so it imports nothing of this project at module level (``-P``: this file's
folder is not put on ``sys.path``; the checkout's ``app`` package is the one
imported). :func:`release_shape` does exactly that for a checked-out release.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import MetaData

ModelShape = dict[str, dict[str, dict[str, bool]]]
TOOLING_TABLES = frozenset({"alembic_version", "migration_audit"})
SHAPE_SECONDS = 60


class ShapeError(RuntimeError):
    """A release's models could not be imported (its error output in the message)."""


def shape_of(metadata: MetaData) -> ModelShape:
    """The shape of ``metadata``'s tables, tooling tables left out."""
    return {
        table.name: {
            column.name: {
                "nullable": bool(column.nullable),
                "default": column.default is not None
                or column.server_default is not None
                or column is table.autoincrement_column,
            }
            for column in table.columns
        }
        for table in metadata.sorted_tables
        if table.name not in TOOLING_TABLES
    }


def release_shape(checkout: Path) -> ModelShape:
    """The shape of the models in ``checkout`` (another copy of this project), read by its own code.

    Runs this file with this interpreter in a subprocess whose ``PYTHONPATH``
    is ``checkout``. Raises :class:`ShapeError` when that fails.
    """
    from app.config import sealed_environment

    environment = {
        **sealed_environment(os.environ),  # importing the models reads no developer settings
        "PYTHONPATH": str(checkout),
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, this file
        [sys.executable, "-P", str(Path(__file__).resolve())],
        cwd=checkout,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SHAPE_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise ShapeError(f"importing the models of {checkout} failed:\n{done.stderr[-2000:]}")
    shape: ModelShape = json.loads(done.stdout)
    return shape


def _print_shape() -> None:
    import app.models  # noqa: F401 - the checkout's models register on db.metadata
    from app.extensions import db

    json.dump(shape_of(db.metadata), sys.stdout)


if __name__ == "__main__":
    _print_shape()
