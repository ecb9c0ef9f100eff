"""The package's import rules, checked statically on every module's source.

1. Jobs sit above the stages: only ``edgegen/jobs/``, ``edgegen/cli.py``
   and ``edgegen/__main__.py`` may import ``edgegen.jobs`` or ``edgegen.cli``.
2. The imports between the top-level parts of edgegen (``edgegen.X``: a
   subpackage or a module) form no cycle.

Every import counts: at module level, inside functions, under
``if TYPE_CHECKING``. Modules are parsed with ``ast``, never imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "edgegen"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE
JOB_LAYER = ("jobs", "cli")  # edgegen.<part> that only the layer itself may import
MAY_IMPORT_JOBS = ("edgegen.jobs", "edgegen.cli", "edgegen.__main__")


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    """edgegen/firmware/qemu.py -> edgegen.firmware.qemu (a package: its __init__)."""
    parts = (root.name,) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imported_names(tree: ast.Module, module: str, is_package: bool,
                   known: set[str]) -> Iterator[tuple[str, int]]:
    """(dotted module name, line) for each import anywhere in ``tree``.

    ``from X import y`` names ``X.y`` when that is a module of ``known``
    (``from edgegen import interrupts``), else ``X``; relative imports are
    resolved against ``module``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in known else base), node.lineno


def part_of(name: str) -> str | None:
    """edgegen.firmware.qemu -> edgegen.firmware; None outside the package
    and for the package's own __init__ (``edgegen``)."""
    parts = name.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def package_imports(root: Path = PACKAGE_DIR) -> list[tuple[str, str, int]]:
    """(importing module, imported module inside the package, line)."""
    modules = package_modules(root)
    known = set(modules)
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, line in imported_names(tree, module, path.name == "__init__.py", known):
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                found.append((module, name, line))
    return found


def part_graph(imports: list[tuple[str, str, int]]) -> dict[str, dict[str, str]]:
    """part -> {imported part: where ("module:line")}, without self-edges."""
    graph: dict[str, dict[str, str]] = {}
    for module, name, line in imports:
        source, target = part_of(module), part_of(name)
        if source is None or target is None:
            continue
        graph.setdefault(source, {})
        graph.setdefault(target, {})
        if source != target:
            graph[source].setdefault(target, f"{module}:{line}")
    return graph


def find_cycle(graph: dict[str, dict[str, str]] | dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed ``graph`` as [a, b, ..., a], or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in graph}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, WHITE) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt, WHITE) == WHITE:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def describe_cycle(cycle: list[str], graph: dict[str, dict[str, str]]) -> str:
    steps = [f"{a} -> {b} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return "import cycle between edgegen's parts:\n  " + "\n  ".join(steps)


def job_layer_violations(imports: list[tuple[str, str, int]]) -> list[str]:
    violations = []
    for module, name, line in imports:
        if part_of(name) in {f"{PACKAGE}.{p}" for p in JOB_LAYER} \
                and part_of(module) not in MAY_IMPORT_JOBS:
            violations.append(f"{module}:{line} imports {name}")
    return violations


# --- the rules, on edgegen itself ---------------------------------------------


def test_the_package_is_parsed():
    imports = package_imports()
    modules = package_modules()
    assert {"edgegen.jobs.deploy", "edgegen.cli", "edgegen.firmware.qemu"} <= set(modules)
    # Imports inside functions are seen (the CLI imports its jobs lazily).
    assert any(m == "edgegen.cli" and n.startswith("edgegen.jobs.") for m, n, _ in imports)


def test_only_the_cli_and_jobs_import_jobs():
    violations = job_layer_violations(package_imports())
    assert not violations, ("stages must not import jobs or the CLI (edgegen/jobs sits above "
                            "them):\n  " + "\n  ".join(violations))


def test_no_import_cycle_between_parts():
    graph = part_graph(package_imports())
    cycle = find_cycle(graph)
    assert cycle is None, describe_cycle(cycle, graph)


# --- the checker, on made-up packages: it can fail ---------------------------


def test_find_cycle_on_small_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}) == ["b", "b2", "b"]
    assert find_cycle({"x": {"y", "z"}, "y": {"z"}, "z": set()}) is None
    assert find_cycle({}) is None


def _write(root: Path, files: dict[str, str]) -> Path:
    package = root / PACKAGE
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


@pytest.mark.parametrize("importer", [
    "from edgegen.jobs.deploy import deploy\n",
    "def f():\n    import edgegen.jobs.deploy\n",
    "from edgegen import jobs\n",
    "from ..jobs import deploy\n",
    "def f():\n    from edgegen.cli import main\n",
])
def test_a_stage_importing_a_job_is_found(tmp_path, importer):
    package = _write(tmp_path, {
        "__init__.py": "", "cli.py": "from edgegen.jobs import deploy\n",
        "jobs/__init__.py": "", "jobs/deploy.py": "from edgegen.plan import arena\n",
        "plan/__init__.py": "", "plan/arena.py": importer,
    })
    violations = job_layer_violations(package_imports(package))
    assert len(violations) == 1 and violations[0].startswith("edgegen.plan.arena:")


def test_a_cycle_through_a_function_level_import_is_reported(tmp_path):
    package = _write(tmp_path, {
        "__init__.py": "__version__ = '0'\n",
        "errors.py": "from edgegen import __version__\n",
        "a/__init__.py": "", "a/one.py": "from edgegen.b.two import g\nfrom . import three\n",
        "a/three.py": "from edgegen import errors\n",
        "b/__init__.py": "", "b/two.py": "def g():\n    from edgegen.c import h\n",
        "c.py": "if True:\n    from .a.one import x\n",
    })
    graph = part_graph(package_imports(package))
    assert graph["edgegen.a"] == {"edgegen.b": "edgegen.a.one:1", "edgegen.errors": "edgegen.a.three:1"}
    cycle = find_cycle(graph)
    assert cycle == ["edgegen.a", "edgegen.b", "edgegen.c", "edgegen.a"]
    message = describe_cycle(cycle, graph)
    assert "edgegen.b -> edgegen.c (edgegen.b.two:2)" in message
    assert "edgegen.c -> edgegen.a (edgegen.c:2)" in message


def test_no_cycle_in_a_layered_made_up_package(tmp_path):
    package = _write(tmp_path, {
        "__init__.py": "", "cli.py": "from edgegen.jobs import run\n",
        "jobs/__init__.py": "", "jobs/run.py": "from edgegen.a import one\nfrom . import other\n",
        "jobs/other.py": "from edgegen.jobs.run import x\n",
        "a/__init__.py": "from edgegen.a.one import f\n", "a/one.py": "import numpy\n",
    })
    imports = package_imports(package)
    assert find_cycle(part_graph(imports)) is None
    assert job_layer_violations(imports) == []
