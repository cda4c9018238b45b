"""The import graph of src/visitplan: imports run one way and form no cycle.

Read from the source with ``ast`` (nothing is imported), so a new import is checked the
moment it is written. Module-level imports are what runs on ``import``; imports under
``if TYPE_CHECKING:`` never run and are left out. Imports inside a function run on call:
those that point back up (towards a module that imports the caller) are listed below, each
with its reason, and a new one fails until it is listed.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "visitplan"

#: The core, lowest first: each may import only modules before it in this list.
CORE = (
    "visitplan.i18n",
    "visitplan.errors",
    "visitplan.codes",
    "visitplan.dates",
    "visitplan.model",
    "visitplan.participant",
    "visitplan.facts",
    "visitplan.schedule",
    "visitplan.recovery",
    "visitplan.compiled",
    "visitplan.reasons",
    "visitplan.engine",
)

#: Everything else is an edge (readers, exporters, the store, the site calendar), and the CLI
#: (with ``python -m visitplan``) sits on top: an edge never imports the CLI.
CLI = ("visitplan.cli", "visitplan.__main__")

#: (importer, imported) -> why a function imports upward. Each entry must still exist.
UPWARD_CALLS = {
    ("visitplan.i18n", "visitplan.errors"): (
        "check_language refuses a language visitplan does not speak with the one error users "
        "see; every module, errors included, marks its texts with i18n"
    ),
    ("visitplan.model", "visitplan.engine"): (
        "Protocol.plan, the documented shortcut for engine.plan (visitplan's own code calls "
        "engine.plan)"
    ),
    ("visitplan.store.schema", "visitplan.store.journal"): (
        "the version 3 migration hash-chains the audit entries written before it with the "
        "journal's own rule, and the journal writes into the schema's tables"
    ),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, deferred: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement under ``node``, with whether it runs only when called."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, deferred
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]), deferred)
        else:
            inner = deferred or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            yield from _imports(child, inner)


def _targets(module: str, node: ast.AST) -> Iterator[str]:
    """The visitplan modules an import statement loads (a package's submodule by name)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                yield name
        return
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    if not base.startswith("visitplan"):
        return
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in MODULES else base


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level imports, imports inside functions): module -> modules it imports."""
    at_load: dict[str, set[str]] = {m: set() for m in MODULES}
    on_call: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, deferred in _imports(tree):
            for target in _targets(module, node):
                if target != module:
                    (on_call if deferred else at_load)[module].add(target)
    return at_load, on_call


AT_LOAD, ON_CALL = import_graph()


def tier(module: str) -> int:
    """0 for the core, 1 for an edge, 2 for the CLI."""
    if module in CORE:
        return 0
    return 2 if module.startswith(CLI) else 1


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_the_walk_sees_the_imports_it_should():
    # The reader itself must work, or every check below passes vacuously.
    assert set(CORE) <= set(MODULES)
    assert "visitplan.dates" in AT_LOAD["visitplan.model"]
    assert "visitplan.engine" in ON_CALL["visitplan.model"]
    assert "visitplan.engine" not in AT_LOAD["visitplan.model"]
    # ``if TYPE_CHECKING:`` imports are not edges: model names Participant only for types.
    assert "visitplan.participant" not in AT_LOAD["visitplan.model"] | ON_CALL["visitplan.model"]
    # ``from visitplan import facts`` is an import of the submodule.
    assert "visitplan.facts" in AT_LOAD["visitplan.engine"]


def test_module_level_imports_form_no_cycle():
    try:
        graphlib.TopologicalSorter(AT_LOAD).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(reversed(exc.args[1]))}")


def test_edges_never_import_the_cli():
    # The CLI imports lazily, inside its commands (tests/test_cold_start.py); an edge reaching
    # up into it would tie the library to click.
    up = {
        (m, t)
        for graph in (AT_LOAD, ON_CALL)
        for m, targets in graph.items()
        if tier(m) == 1
        for t in targets
        if tier(t) == 2
    }
    assert not up


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_only_downward(module):
    below = set(CORE[: CORE.index(module)])
    assert AT_LOAD[module] <= below, f"{module} imports {sorted(AT_LOAD[module] - below)}"
    upward = {t for t in ON_CALL[module] if t not in below}
    listed = {t for (m, t) in UPWARD_CALLS if m == module}
    assert upward == listed, f"{module} imports upward inside functions: {sorted(upward)}"


def test_every_function_import_that_points_back_is_listed():
    # An import inside a function that, written at module level, would close a cycle.
    upward = {
        (module, target)
        for module, targets in ON_CALL.items()
        for target in targets
        if reaches(AT_LOAD, target, module)
    }
    upward |= {(m, t) for m in CORE for t in ON_CALL[m] if t not in CORE[: CORE.index(m)]}
    assert upward == set(UPWARD_CALLS)


def test_no_function_hides_gettext_behind_a_local_underscore():
    """``_`` is gettext (visitplan.i18n): a function that also binds ``_`` as a throwaway name
    (``day, _ = pair``) calls that value instead of translating. Loop variables are ruff's
    F402; this catches assignments and unpacking too (comprehensions have their own scope)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            inside = [n for stmt in fn.body for n in ast.walk(stmt)]
            in_comprehensions = {
                id(n)
                for c in inside
                if isinstance(c, ast.comprehension)
                for n in ast.walk(c.target)
            }
            binds = any(
                isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store)
                and id(n) not in in_comprehensions
                for n in inside
            )  # fmt: skip
            calls = any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_"
                for n in inside
            )
            if binds and calls:
                found.append(f"{path.relative_to(SRC)}:{fn.lineno} {fn.name}")
    assert not found, found
