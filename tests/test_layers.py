"""The architecture, enforced: imports only point down the layers, no import cycles, the core imports no adapter.

Every import in ``joyai_embodied/``, ``ros_nodes/`` and ``sim_envs/`` is read with ``ast`` (including imports
inside functions, which are still dependencies, and ``importlib.import_module("literal")``). Layers, top to
bottom (README "Where things are")::

    commands      joyai_embodied.commands (and the joyai_embodied.cli alias)
    scale-out     joyai_embodied.distributed: evaluation episodes on Ray actors, the model on Ray Serve
    factory       joyai_embodied.envs: make_env / load_world_model, the one place that picks adapters
    applications  planner, evaluation, recording, rollout (WorldModelEnv)
    transports    joyai_embodied.serve, ros_nodes
    environments  sim_envs
    service       joyai_embodied.service
    world model   joyai_embodied.world_model (and the package facade joyai_embodied/__init__.py)
    backends      joyai_embodied.backends
    foundation    spatial, camera, drawing, types, errors, config

The last tests feed the checker small synthetic packages and check that it catches what it should.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("joyai_embodied", "ros_nodes", "sim_envs")
#: Folders that are not Python modules of ours (the ROS interface package is generated code; launch files
#: are scripts run by ``ros2 launch``).
SKIPPED_DIRS = {"joyai_interfaces", "launch", "__pycache__"}

#: module prefix -> layer; the longest matching prefix wins.
LAYER_OF_PREFIX = {
    "joyai_embodied.commands": "commands",
    "joyai_embodied.cli": "commands",
    "joyai_embodied.distributed": "scale-out",
    "joyai_embodied.envs": "factory",
    "joyai_embodied.planner": "applications",
    "joyai_embodied.evaluation": "applications",
    "joyai_embodied.recording": "applications",
    "joyai_embodied.rollout": "applications",
    "joyai_embodied.serve": "transports",
    "ros_nodes": "transports",
    "sim_envs": "environments",
    "joyai_embodied.service": "service",
    "joyai_embodied.world_model": "world model",
    "joyai_embodied": "world model",  # the package facade re-exports WorldModel
    "joyai_embodied.backends": "backends",
    "joyai_embodied.spatial": "foundation",
    "joyai_embodied.camera": "foundation",
    "joyai_embodied.drawing": "foundation",
    "joyai_embodied.types": "foundation",
    "joyai_embodied.errors": "foundation",
    "joyai_embodied.config": "foundation",
}
BELOW = {  # layer -> the layers it may import besides its own
    "commands": {"scale-out", "factory", "applications", "transports", "environments", "service", "world model", "backends",
                 "foundation"},
    "scale-out": {"factory", "applications", "transports", "environments", "service", "world model", "backends",
                  "foundation"},
    "factory": {"transports", "environments", "service", "world model", "backends", "foundation"},
    "applications": {"environments", "service", "world model", "backends", "foundation"},
    "transports": {"environments", "service", "world model", "backends", "foundation"},
    "environments": {"foundation"},
    "service": {"world model", "backends", "foundation"},
    "world model": {"backends", "foundation"},
    "backends": {"foundation"},
    "foundation": set(),
}
CORE_LAYERS = {"service", "world model", "backends", "foundation"}
ADAPTERS = ("ros_nodes", "sim_envs", "joyai_embodied.planner", "joyai_embodied.commands", "joyai_embodied.cli")


# -- the checker ------------------------------------------------------------------------------------------
def find_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module under ``root/<package>`` (a package is its __init__)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if SKIPPED_DIRS & set(parts) or any("." in part or "-" in part for part in parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import of one of ``known`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []

    def add(name: str, line: int) -> None:
        while name and name not in known:  # "pkg.mod.Class" -> "pkg.mod"; unknown third-party -> dropped
            name = name.rpartition(".")[0]
        if name and name != module:
            found.append((name, line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module) if node.level else (node.module or "")
            for alias in node.names:  # "from pkg import submodule" depends on the submodule
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base, node.lineno)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                add(node.args[0].value, node.lineno)
    return sorted(set(found), key=lambda item: (item[1], item[0]))


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, list[tuple[str, int]]]:
    """``{module: [(imported module, line), ...]}`` over our own modules only."""
    modules = find_modules(root, packages)
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def layer_of(module: str) -> str | None:
    matches = [p for p in LAYER_OF_PREFIX if module == p or module.startswith(p + ".")]
    return LAYER_OF_PREFIX[max(matches, key=len)] if matches else None


def layer_violations(graph: dict[str, list[tuple[str, int]]], root: Path = ROOT) -> list[str]:
    """One line per import that points up (or sideways into another layer it may not use)."""
    problems = []
    for module, imports in sorted(graph.items()):
        source = layer_of(module)
        for target, line in imports:
            dest = layer_of(target)
            if source and dest and dest != source and dest not in BELOW[source]:
                problems.append(f"{_where(module, root)}:{line}: {module} ({source}) imports {target} ({dest})")
    return problems


def adapter_imports(graph: dict[str, list[tuple[str, int]]], root: Path = ROOT) -> list[str]:
    """One line per import of an adapter (ros_nodes, sim_envs, planner, commands) by the core."""
    return [f"{_where(module, root)}:{line}: core module {module} imports adapter {target}"
            for module, imports in sorted(graph.items()) if layer_of(module) in CORE_LAYERS
            for target, line in imports if any(target == a or target.startswith(a + ".") for a in ADAPTERS)]


def import_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the number of modules (a few hundred)
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def _where(module: str, root: Path) -> str:
    for candidate in (Path(*module.split(".")).with_suffix(".py"), Path(*module.split("."), "__init__.py")):
        if (root / candidate).is_file():
            return str(candidate)
    return module


# -- the project ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT)


def test_every_module_belongs_to_a_layer(graph):
    assert len(graph) > 50, "the checker found suspiciously few modules"
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    assert not unplaced, f"modules outside every layer (add them to LAYER_OF_PREFIX): {unplaced}"


def test_imports_point_down(graph):
    problems = layer_violations(graph)
    assert not problems, "imports that point up the layers:\n" + "\n".join(problems)


def test_core_imports_no_adapter(graph):
    problems = adapter_imports(graph)
    assert not problems, "\n".join(problems)


def test_no_import_cycles(graph):
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# -- the checker catches what it should ----------------------------------------------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_checker_catches_an_upward_import_and_an_adapter_import(tmp_path):
    _write(tmp_path, {
        "joyai_embodied/__init__.py": "",
        "joyai_embodied/errors.py": "",
        # foundation -> applications, lazily inside a function: still a dependency
        "joyai_embodied/types.py": "def f():\n    from .planner import plan\n",
        "joyai_embodied/planner/__init__.py": "",
        "joyai_embodied/planner/plan.py": "from ..errors import JoyAIError\n",
        # the world model reaching for ROS by a string
        "joyai_embodied/world_model.py": "import importlib\nimportlib.import_module('ros_nodes.clients')\n",
        "ros_nodes/__init__.py": "",
        "ros_nodes/clients.py": "from joyai_embodied import errors\n",
    })
    graph = import_graph(tmp_path)
    problems = layer_violations(graph, tmp_path)
    assert any("joyai_embodied/types.py:2" in p and "joyai_embodied.planner.plan" in p for p in problems), problems
    assert any("joyai_embodied/world_model.py:2" in p and "ros_nodes.clients" in p for p in problems), problems
    assert not any("ros_nodes/clients.py" in p for p in problems), "a transport may import errors"
    adapters = adapter_imports(graph, tmp_path)
    assert len(adapters) == 2 and all("imports adapter" in a for a in adapters), adapters


def test_checker_catches_a_cycle_through_relative_imports(tmp_path):
    _write(tmp_path, {
        "sim_envs/__init__.py": "",
        "sim_envs/a.py": "from . import b\n",
        "sim_envs/b.py": "from .c import thing\n",
        "sim_envs/c.py": "from sim_envs.a import other\n",
        "sim_envs/d.py": "from .a import other\n",  # depends on the cycle, is not part of it
    })
    assert import_cycles(import_graph(tmp_path)) == [["sim_envs.a", "sim_envs.b", "sim_envs.c"]]


def test_checker_accepts_a_clean_tree(tmp_path):
    _write(tmp_path, {
        "joyai_embodied/__init__.py": "from .world_model import WorldModel\n",
        "joyai_embodied/errors.py": "",
        "joyai_embodied/world_model.py": "from .errors import JoyAIError\nfrom .backends import base\n",
        "joyai_embodied/backends/__init__.py": "from .base import Backend\n",
        "joyai_embodied/backends/base.py": "from ..errors import JoyAIError\nimport numpy\n",
        "joyai_embodied/commands/__init__.py": "import importlib\nimportlib.import_module('ros_nodes')\n",
        "ros_nodes/__init__.py": "",
    })
    graph = import_graph(tmp_path)
    assert layer_violations(graph, tmp_path) == [] and adapter_imports(graph, tmp_path) == []
    assert import_cycles(graph) == []
