"""The layout's rules, read from the import graph (ast), so they cannot regress quietly.

- no import cycle, counting imports inside functions too;
- voting/domain is pure: it imports nothing of Flask, SQLAlchemy or the rest of voting;
- only voting/live uses Redis pub/sub;
- services never reach voting.web, not even through another module;
- every module says in its first docstring line what it is for, in under 400 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "voting"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imported(name: str) -> Iterator[str]:
    """Every module `name` imports, wherever the import statement stands."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from voting import live` imports the module voting.live; only names that
            # are not modules come from `voting` itself.
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in MODULES else base


def graph() -> dict[str, set[str]]:
    """Module -> the voting modules it imports."""
    return {name: {m for m in imported(name) if m in MODULES and m != name} for name in MODULES}


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in edges[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_graph_is_read_from_the_source() -> None:
    # The checks below are only as good as the graph: it must see what we know is there.
    edges = graph()
    assert "voting.domain.statuses" in edges["voting.models"]
    assert "voting.live" in edges["voting.services.polls"] or any(
        "voting.live" in edges[m] for m in edges if m.startswith("voting.services.polls.")
    )
    assert "voting.app" in edges["voting"]


def test_no_import_cycles() -> None:
    edges = graph()
    cycles = sorted(name for name in edges if name in reachable(edges, name))
    assert cycles == [], f"modules that import themselves through others: {cycles}"


def test_the_domain_is_pure() -> None:
    for name in MODULES:
        if not name.startswith("voting.domain"):
            continue
        outside = {
            m
            for m in imported(name)
            if m.split(".")[0] in ("flask", "flask_sqlalchemy", "sqlalchemy", "werkzeug", "redis")
            or (m.startswith("voting") and not m.startswith("voting.domain"))
        }
        assert outside == set(), f"{name} imports {sorted(outside)}"


def test_only_live_uses_redis_pub_sub() -> None:
    users = set()
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("pubsub", "publish"):
                users.add(name)
    assert users, "the live package publishes snapshots; the check must find it"
    assert {u for u in users if not u.startswith("voting.live")} == set()


def test_services_never_reach_the_web_layer() -> None:
    edges = graph()
    for name in MODULES:
        if name.startswith("voting.services"):
            web = {m for m in reachable(edges, name) if m.startswith("voting.web")}
            assert web == set(), f"{name} reaches {sorted(web)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_is_short_and_says_what_it_is_for(name: str) -> None:
    source = MODULES[name].read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and docstring.splitlines()[0].strip(), f"{name} has no docstring"
    assert len(source.splitlines()) <= MAX_LINES, f"{name} is over {MAX_LINES} lines"
