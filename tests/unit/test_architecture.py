"""The storage layer owns every query (README, "Architecture"): no module outside
``service/storage/`` builds or runs a SQL statement. The layer rules between packages are checked by
import-linter (``[tool.importlinter]`` in pyproject.toml, run by ``make lint``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"

# Statement constructors (sqlalchemy / sqlmodel), the session calls that run statements, and the ORM's
# unit of work (a row read by key, added, deleted, flushed or read again). Transaction control
# (commit, rollback) stays with the steps and routes, which own their transactions.
STATEMENTS = {"select", "insert", "update", "delete", "text", "dialect_insert"}
RUNNERS = {"exec", "execute", "scalar", "scalars", "stream", "stream_scalars",
           "get", "add", "add_all", "delete", "merge", "refresh", "flush"}

# Below the storage layer: the engine and connection set-up (PRAGMAs), and the table definitions.
ALLOWED = {"db.py", "models.py"}


def _sql_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if isinstance(func, ast.Name) and name in STATEMENTS:
            found.append(f"{path.relative_to(SERVICE.parent)}:{node.lineno} {name}(…)")
        elif isinstance(func, ast.Attribute) and (
            (name in STATEMENTS and isinstance(func.value, ast.Name) and func.value.id in {"sa", "sqlalchemy", "sqlmodel"})
            or (name in RUNNERS and _is_session(func.value))
        ):
            found.append(f"{path.relative_to(SERVICE.parent)}:{node.lineno} .{name}(…)")
    return found


def _is_session(node: ast.expr) -> bool:
    """A receiver named like a database session or connection (``session``, ``self.conn``, …)."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "session" in name or "conn" in name


def _modules() -> list[Path]:
    return sorted(p for p in SERVICE.rglob("*.py")
                  if "storage" not in p.relative_to(SERVICE).parts and str(p.relative_to(SERVICE)) not in ALLOWED)


def test_the_check_finds_sql() -> None:
    """The scan itself works: the storage layer is full of what it looks for."""
    assert _sql_calls(SERVICE / "storage" / "feeds.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SERVICE)))
def test_no_sql_outside_the_storage_layer(path: Path) -> None:
    assert _sql_calls(path) == []
