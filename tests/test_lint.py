"""Linters run as tests (as in ros2/examples): ruff over the whole repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the [dev] extra"
    proc = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imported_modules(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, names) of every import in `path` at any depth (module level, in functions, in
    try blocks), `import a, b` split, plus `importlib.import_module("x")` / `__import__("x")` with a
    literal name; `names` are what `from module import ...` takes (empty otherwise). Relative
    imports resolve against the file's package."""
    import ast

    tree = ast.parse(path.read_text(), str(path))
    package = list(path.relative_to(ROOT).parent.parts) if path.is_relative_to(ROOT) else []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.append((node.lineno, module, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value, ()))
    return found


def _forbidden_imports(path: Path, names) -> list[str]:
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return [
        f"{where}:{line}: imports {module}"
        for line, module, _ in _imported_modules(path)
        if any(module == name or module.startswith(name + ".") for name in names)
    ]


def test_layers_do_not_import_heavier_layers():
    """The layers run one way, fmb_core <- cad <- sim <- policies <- fmb_ros <- fmb (the application):
    the ground package imports no layer, no layer imports the application, cad and sim never import
    torch, nothing but fmb_ros imports rclpy. Every import counts, function-local ones included."""
    forbidden = {
        "fmb_core": ("cad", "sim", "policies", "fmb_ros", "fmb", "torch", "rclpy", "mujoco", "pybullet", "open3d"),
        "cad": ("torch", "rclpy", "sim", "policies", "fmb_ros", "fmb", "mujoco", "pybullet"),
        "sim": ("torch", "rclpy", "policies", "fmb_ros", "fmb"),
        "policies": ("rclpy", "fmb_ros", "fmb"),
        "fmb_ros": ("fmb",),
        "fmb": ("torch", "rclpy"),
    }
    bad = []
    for package, names in forbidden.items():
        for path in (ROOT / package).rglob("*.py"):
            bad += _forbidden_imports(path, names)
    assert not bad, bad


def test_the_ros_free_core_lives_below_fmb_ros():
    """The safety filter, the action limits and workspace, and perception are in sim (where `fmb eval`
    can use them), import no rclpy, torch or fmb_ros, and have no copy left in fmb_ros."""
    core = [ROOT / "sim" / "safety.py", ROOT / "sim" / "limits.py", *sorted((ROOT / "sim" / "perception").glob("*.py"))]
    names = {p.relative_to(ROOT).as_posix() for p in core}
    assert {"sim/safety.py", "sim/limits.py", "sim/perception/__init__.py", "sim/perception/estimator.py"} <= names
    assert all(p.is_file() for p in core)
    bad = [m for p in core for m in _forbidden_imports(p, ("rclpy", "torch", "fmb_ros", "policies"))]
    assert not bad, bad
    gone = ("safety.py", "perception.py", "perception_models.py", "perception_eval.py")
    assert not [n for n in gone if (ROOT / "fmb_ros" / n).exists()]


LAYERS = ("fmb_core", "cad", "sim", "policies", "fmb_ros", "fmb")


def _module_graph() -> dict[str, set[str]]:
    """module -> the stack's modules it imports (any depth, function-local included). `from pkg import
    sub` is an import of the submodule only; the implicit import of a module's own parent packages
    does not count."""
    modules = {}
    for top in LAYERS:
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for _, module, names in _imported_modules(path):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            for target in subs + ([module] if len(subs) < max(len(names), 1) else []):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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


def test_no_import_cycles():
    """No two modules of the stack import each other, directly or around a loop (function-local
    imports count: a cycle hidden in a function is still a cycle)."""
    graph = _module_graph()
    assert len(graph) > 100 and graph["policies.experiments.bench"], "the scan found the stack's modules"
    assert not _cycles(graph), _cycles(graph)


def test_the_cycle_check_finds_a_loop():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_scan_sees_function_local_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from fmb_ros.skill import State\n    import numpy, rclpy.node\n"
        "    import importlib\n    importlib.import_module('torch')\n"
    )
    found = _forbidden_imports(probe, ("rclpy", "fmb_ros", "torch"))
    assert [f.split(": imports ")[1] for f in found] == ["fmb_ros.skill", "rclpy.node", "torch"]


def test_every_package_folder_is_installed():
    """setup.py's find_packages(include=...) must cover every folder with an __init__.py: a
    non-editable install (pip install .[cad]) ships only those."""
    import ast

    from setuptools import find_packages

    call = next(
        node
        for node in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "find_packages"
    )
    include_src = ast.unparse(next(k.value for k in call.keywords if k.arg == "include"))
    include = eval(include_src, {"PACKAGE_NAME": "fmb_ros"})  # noqa: S307 - our own setup.py
    shipped = set(find_packages(str(ROOT), include=include))
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("fmb_core", "fmb", "cad", "sim", "policies", "fmb_ros")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert folders and folders <= shipped, folders - shipped
