"""The package's shape: a small typed public API, import-light facades, and no import cycles.

No chain is needed: these tests read the source with `ast` and import modules, in this process or
in a fresh interpreter (to see exactly what `import treasury` loads).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import treasury

PACKAGE = Path(treasury.__file__).resolve().parent
ROOT = PACKAGE.parent

# Function-level or TYPE_CHECKING imports that close a cycle, each with the reason it must stay.
# Empty: every cycle was broken by moving code to the stage where the data flow puts it.
ALLOWED_CYCLE_EDGES: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
FACADES = sorted(name for name, path in MODULES.items() if path.name == "__init__.py" and "lazy_exports(" in path.read_text())
assert "treasury" in FACADES and len(FACADES) >= 8


def _imported(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def import_lines(module: str) -> dict[str, int]:
    """Every treasury module `module` imports anywhere in its source (top level, in functions, under
    TYPE_CHECKING), with the line of the first such import."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _imported(module, node)
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
        for target in targets:
            if target in MODULES and target != module:
                found[target] = min(found.get(target, node.lineno), node.lineno)
    return found


def import_edges(module: str) -> set[str]:
    return set(import_lines(module))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    """Control: a cycle is found and a chain is not; imports inside functions and under TYPE_CHECKING count."""
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert "treasury.execution.rehearsal" in import_edges("treasury.treasury")  # imported inside Treasury.rehearse
    assert "treasury.store" in import_edges("treasury.execution.reconcile")  # imported under TYPE_CHECKING only


def test_there_are_no_import_cycles():
    graph = {module: import_edges(module) - {t for (m, t) in ALLOWED_CYCLE_EDGES if m == module} for module in MODULES}
    cycles = strongly_connected(graph)
    edges = [f"{m}:{line} imports {t}" for cycle in cycles for m in cycle for t, line in import_lines(m).items() if t in cycle]
    assert cycles == [], "import cycles: " + "; ".join(edges)


def test_every_allowed_cycle_edge_still_exists():
    for module, target in ALLOWED_CYCLE_EDGES:
        assert target in import_edges(module), f"{module} no longer imports {target}: drop the allowance"


def test_the_former_cycles_stay_broken():
    """The cycles this layout removed: explain/guard/execution, and reconcile/Treasury."""
    assert "treasury.chain.guard" not in import_edges("treasury.decode.revert")
    assert "treasury.chain.guard" not in import_edges("treasury.execution.send")
    assert "treasury.treasury" not in import_edges("treasury.execution.reconcile")
    assert not any(edge == "treasury" for module in MODULES for edge in import_edges(module))


@pytest.mark.parametrize("facade", FACADES)
def test_every_public_name_imports(facade):
    module = importlib.import_module(facade)
    assert module.__all__, f"{facade} exports nothing"
    for name in module.__all__:
        assert getattr(module, name) is not None
        assert name in dir(module)
    namespace: dict = {}
    exec(f"from {facade} import *", namespace)  # noqa: S102 - the star import a user may write
    assert set(module.__all__) <= set(namespace)


@pytest.mark.parametrize("facade", FACADES)
def test_facades_are_declared_consistently(facade):
    """__all__, the lazy table and the TYPE_CHECKING imports (for type checkers) list the same names."""
    module = importlib.import_module(facade)
    table = {(source, name) for source, names in module._EXPORTS.items() for name in names}
    assert sorted(module.__all__) == sorted(name for _, name in table)
    assert len(module.__all__) == len(set(module.__all__))
    typed = set()
    for node in ast.walk(ast.parse(MODULES[facade].read_text())):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            typed |= {(n.module, a.name) for n in node.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert typed == table
    # A name that is also a submodule would be shadowed by the module once it is imported.
    submodules = {name.rpartition(".")[2] for name in MODULES if name.rpartition(".")[0] == facade}
    assert not submodules & set(module.__all__)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        treasury.Nope
    assert not hasattr(treasury.signatures, "collect_everything")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(result.stdout.split())


HEAVY = {"ape", "web3"}


@pytest.mark.parametrize("statement", [
    "import treasury",
    "import treasury.cli",
    "import treasury.types",
    ("import treasury.proposal, treasury.decode, treasury.policy, treasury.signatures, treasury.execution, "
     "treasury.chain, treasury.testing"),
    "from treasury import __all__, __version__",
])
def test_importing_the_facades_loads_no_chain_stack(statement):
    loaded = _loaded_after(statement)
    assert not {module.split(".")[0] for module in loaded} & HEAVY


def test_a_public_name_loads_its_module_on_first_use():
    """Controls for the test above: the check sees web3 when it is imported, and a name loads its module lazily."""
    assert "web3" in _loaded_after("import treasury, web3")
    assert "treasury.policy.model" not in _loaded_after("import treasury")
    assert "treasury.policy.model" in _loaded_after("from treasury import Policy")


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["treasury"]


def test_literal_types_match_the_values_in_use():
    """The vocabularies are the strings stored and printed today (the store checks its own against them)."""
    from typing import get_args

    from treasury import types
    from treasury.policy.verdict import DELAY_ERRORS
    from treasury.signatures.verification import KINDS

    assert types.OPEN_STATUS_VALUES == ("pending", "scheduled")
    assert set(types.OPEN_STATUS_VALUES) < set(types.PROPOSAL_STATUS_VALUES)
    assert KINDS == get_args(types.SignatureKind)
    assert types.VERDICT_OUTCOME_VALUES == ("allow", "needs-delay", "deny")
    assert types.OPERATION_VALUES == (types.CALL, types.DELEGATE_CALL) == (0, 1)
    assert DELAY_ERRORS == {"NotScheduled", "NotYetDue", "EntryExpired"}
