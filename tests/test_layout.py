"""The package layout: one stage module per entry point, imports pointing from stages to the library only."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from conftest import REPO

from findistill.stages import STAGES

PACKAGE = REPO / "findistill"


def _imports(path: Path) -> set[str]:
    """Modules of findistill imported anywhere in ``path`` (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("findistill"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("findistill"))
    return found


def _group(path: Path) -> str:
    """``stages``, ``data``, ... for a module of a subpackage; the module name for a top-level one."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def test_every_entry_point_has_its_own_stage_module_and_script():
    entry_points = set(yaml.safe_load((REPO / "MLproject").read_text())["entry_points"])
    assert entry_points == set(STAGES) and len(STAGES) >= 8
    for name, module in STAGES.items():
        assert module.__name__ == f"findistill.stages.{name}"
        assert callable(module.run) and hasattr(module.Config, "__dataclass_fields__")
        assert (REPO / "entrypoints" / f"{name}.py").is_file()


def test_the_library_never_imports_a_stage_and_its_packages_form_no_cycle():
    modules = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    library = [p for p in modules if _group(p) not in ("stages", "cli", "__main__")]  # __main__: the CLI too
    assert len(library) > 20
    upward = ("findistill.stages", "findistill.cli")
    offenders = [(str(p), m) for p in library for m in _imports(p) if m.startswith(upward)]
    assert offenders == []

    graph: dict[str, set[str]] = {}
    for p in library:
        graph.setdefault(_group(p), set()).update(
            m.split(".")[1] for m in _imports(p) if m.count(".") >= 1 and m.split(".")[1] != _group(p))
    assert {"data", "vocab", "models", "training", "evaluation", "costs", "tracking"} <= set(graph)
    state: dict[str, str] = {}

    def visit(group: str, path: list[str]) -> None:
        assert state.get(group) != "open", f"import cycle: {' -> '.join(path + [group])}"
        if state.get(group) == "done":
            return
        state[group] = "open"
        for dep in graph.get(group, ()):
            visit(dep, path + [group])
        state[group] = "done"

    for group in graph:
        visit(group, [])
