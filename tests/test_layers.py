"""Data flows one way: every import inside pulse_cli (lazy ones included) goes to its own layer or
one below, and no modules import each other in a cycle. Seen as wholes, packages do the same: each
package sits in one layer, and no packages import each other in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pulse_cli

PACKAGE = Path(pulse_cli.__file__).parent

# Bottom first. A module belongs to the layer of the longest prefix that names it.
LAYERS = [
    ["pulse_cli", "pulse_cli.errors", "pulse_cli.atomic", "pulse_cli.options", "pulse_cli.schedules",
     "pulse_cli.images", "pulse_cli.weights", "pulse_cli.devices", "pulse_cli.cache",
     "pulse_cli.quiet", "pulse_cli.runtimes", "pulse_cli.allocator", "pulse_cli.threads"],
    ["pulse_cli.graphs", "pulse_cli.optimizers", "pulse_cli.spherical", "pulse_cli.consistency"],
    ["pulse_cli.plugins"],
    ["pulse_cli.export"],
    ["pulse_cli.models"],
    ["pulse_cli.niqe", "pulse_cli.faces"],
    ["pulse_cli.backends"],
    ["pulse_cli.search", "pulse_cli.faithful", "pulse_cli.strategies"],
    ["pulse_cli.upsample", "pulse_cli.contact_sheet"],
    ["pulse_cli.bench", "pulse_cli.demo"],
    ["pulse_cli.cli", "pulse_cli.__main__"],
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (prefix != "pulse_cli" and module.startswith(prefix + "."))
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def package_of(module: str) -> str:
    """The package ``module`` belongs to as a whole: ``pulse_cli.X`` for anything inside the
    subpackage ``pulse_cli/X/``; a module directly in ``pulse_cli/`` stands for itself."""
    return ".".join(module.split(".")[:2])


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The pulse_cli modules ``path`` imports anywhere in its body (``from pkg import mod`` counts
    as importing ``pkg.mod`` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {module: imports_of(path, set(paths)) - {module} for module, path in paths.items()}


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def cycles(edges: dict[str, set[str]]) -> list[str]:
    """Each cycle a depth-first walk of ``edges`` meets, as ``a -> b -> a``."""
    state: dict[str, int] = {}
    found = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                found.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_no_modules_import_each_other_in_a_cycle():
    graph = import_graph()
    # a package's __init__ may re-export its own modules; those edges point down into it
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    assert not cycles(edges), "\n".join(cycles(edges))


def test_every_module_of_a_package_sits_in_the_package_s_layer():
    misplaced = [
        f"{module} (layer {layer_of(module)}) is in {package} (layer {layer_of(package)})"
        for module in import_graph()
        if layer_of(module) != layer_of(package := package_of(module))
    ]
    assert not misplaced, "\n".join(misplaced)


def test_no_packages_import_each_other_in_a_cycle():
    edges: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        package = package_of(module)
        edges.setdefault(package, set()).update(package_of(t) for t in targets if package_of(t) != package)
    for targets in list(edges.values()):
        for target in targets:
            edges.setdefault(target, set())
    assert not cycles(edges), "\n".join(cycles(edges))
