"""The safe alternative to each lint hazard, filled in with the statement's own names.

strong_migrations prints, beside each unsafe call, the safe version written
with the migration's table and columns (its ``error_messages.rb``); this is
that table for squawk's rules (``app.db.lint.HAZARD_RULES``), pointing at the
operations of ``app.db.ops``. The names come from the offending SQL statement
(rendered by Alembic, so its shape is regular); a name that cannot be read
stays a ``<placeholder>``.
"""

from __future__ import annotations

import re

SAFE_ALTERNATIVES = {
    "require-concurrent-index-creation": "op.safe_create_index('{index}', '{table}', [{columns}])",
    "ban-concurrent-index-creation-in-transaction": (
        "op.safe_create_index('{index}', '{table}', [{columns}]) (it builds in an autocommit block)"
    ),
    "constraint-missing-not-valid": "op.safe_add_check('{constraint}', '{table}', '{condition}')",
    "adding-foreign-key-constraint": (
        "op.safe_add_foreign_key('{constraint}', '{table}', '{referent}', [{columns}], [{remote}])"
    ),
    "disallowed-unique-constraint": "op.safe_add_unique('{constraint}', '{table}', [{columns}])",
    "changing-column-type": (
        "add a new column beside '{table}.{column}', backfill it (app/db/backfill.py), switch the "
        "code, then op.unsafe_drop_column('{table}', '{column}') in a contract revision"
    ),
    "adding-required-field": (
        "op.add_column('{table}', sa.Column('{column}', …, nullable=True)), backfill it, then "
        "op.safe_set_not_null('{table}', '{column}'); or give it a constant server_default"
    ),
    "adding-not-nullable-field": "op.safe_set_not_null('{table}', '{column}')",
    "ban-drop-column": (
        "op.unsafe_drop_column('{table}', '{column}') in a contract revision, once no running "
        "release reads {table}.{column}"
    ),
    "ban-drop-table": (
        "op.unsafe_drop_table('{table}') in a contract revision, once no running release "
        "reads {table}"
    ),
    "renaming-column": (
        "add {table}.{new_name} (expand), backfill it from {column}, switch the code, then "
        "op.unsafe_drop_column('{table}', '{column}') in a contract revision"
    ),
    "renaming-table": (
        "create {new_name} (expand), copy {table} into it, switch the code, then "
        "op.unsafe_drop_table('{table}') in a contract revision"
    ),
    "require-lock-timeout": "apply it with `flask db run`, which sets MIGRATION_LOCK_TIMEOUT",
}

_T = r"ALTER TABLE (?:ONLY )?(?P<table>\w+) "
_PATTERNS = (
    r"CREATE (?:UNIQUE )?INDEX (?:CONCURRENTLY )?(?:IF NOT EXISTS )?(?P<index>\w+) "
    r"ON (?P<table>\w+)"
    r"(?: USING \w+)? \((?P<columns>[^)]*)\)",
    _T + r"ADD CONSTRAINT (?P<constraint>\w+) CHECK \((?P<condition>.*)\)",
    _T + r"ADD CONSTRAINT (?P<constraint>\w+) FOREIGN KEY ?"
    r"\((?P<columns>[^)]*)\) REFERENCES (?P<referent>\w+) ?\((?P<remote>[^)]*)\)",
    _T + r"ADD CONSTRAINT (?P<constraint>\w+) UNIQUE ?\((?P<columns>[^)]*)\)",
    _T + r"RENAME (?:COLUMN )?(?P<column>\w+) TO (?P<new_name>\w+)",
    _T + r"RENAME TO (?P<new_name>\w+)",
    _T + r"(?:ALTER|DROP|ADD) (?:COLUMN )?(?:IF (?:NOT )?EXISTS )?(?P<column>\w+)",
    r"DROP TABLE (?:IF EXISTS )?(?P<table>\w+)",
)


class _Names(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def names_in(statement: str) -> dict[str, str]:
    """``{"table": …, "column": …}`` and the like, read from one SQL statement."""
    flat = " ".join(statement.replace('"', "").split()).rstrip(";")
    for pattern in _PATTERNS:
        match = re.search(pattern, flat, re.IGNORECASE)
        if match:
            found = {k: v for k, v in match.groupdict().items() if v is not None}
            for key in ("columns", "remote"):
                if key in found:
                    found[key] = ", ".join(f"'{c.strip()}'" for c in found[key].split(","))
            return found
    return {}


def safe_alternative(rule: str, statement: str) -> str | None:
    """The safe form for ``rule``'s hazard in ``statement``; ``None`` when there is none."""
    names = _Names(names_in(statement))
    if rule == "constraint-missing-not-valid" and "referent" in names:
        rule = "adding-foreign-key-constraint"  # the same advice for a foreign key
    if rule == "constraint-missing-not-valid" and "condition" not in names:
        rule = "disallowed-unique-constraint"
    template = SAFE_ALTERNATIVES.get(rule)
    return template.format_map(names) if template else None
