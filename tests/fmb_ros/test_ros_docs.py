"""fmb_ros/README.md's parameter tables against the nodes' declarations.

Every node declares its parameters from one table, `PARAMETERS = {name: (default, description)}`,
through `fmb_ros.params.declare_all`. The tables are read here statically (ast): literal defaults
as they are written, the others (`list(_LIMITS.workspace_low)`, `_DEFAULTS.voxel`) evaluated against
the ROS-free modules they come from (`sim.safety`, `sim.perception`), so neither rclpy nor a node is
needed. In the README each node's section has a parameter table (`| Parameter | Default | Meaning |`)
and an interface table whose "Name (parameter)" column names the parameter that sets each topic,
service or action. Each name there must be declared by that node, each declared parameter must be in
one of the two tables, and every default the README states must be the declared one, with its type
(a float needs a decimal point: ROS refuses `-p noise:=0` for a double parameter).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import math
import re
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "fmb_ros" / "README.md"
# node executable (its README section heading) -> module that defines the node's PARAMETERS table
NODES = {
    "fmb_sim_robot": "fmb_ros/sim_robot.py",
    "fmb_skill_server": "fmb_ros/skill_params.py",
    "fmb_task_executor": "fmb_ros/task_executor.py",
    "fmb_perception": "fmb_ros/perception_node.py",
    "fmb_cloud_fusion": "fmb_ros/cloud_fusion_node.py",
    "fmb_recorder": "fmb_ros/recorder_node.py",
    "fmb_teleop": "fmb_ros/teleop_node.py",
}
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


# --- the declarations ------------------------------------------------------------------------


def _module_level(tree: ast.Module) -> tuple[dict[str, ast.expr], dict[str, tuple[str, str]]]:
    """Top-level assignments (name -> value expression) and from-imports (name -> (module, attr))."""
    assigns: dict[str, ast.expr] = {}
    imports: dict[str, tuple[str, str]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
            for alias in stmt.names:
                imports[alias.asname or alias.name] = (stmt.module, alias.name)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            assigns[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            assigns[stmt.target.id] = stmt.value
    return assigns, imports


def declared(module: str) -> dict[str, object]:
    """The `PARAMETERS` table of `module` (a path under the repository): name -> default value."""
    path = ROOT / module
    assigns, imports = _module_level(ast.parse(path.read_text(), str(path)))
    assert "PARAMETERS" in assigns, f"{module} defines no PARAMETERS table"
    table = assigns["PARAMETERS"]
    assert isinstance(table, ast.Dict), f"{module}: PARAMETERS is not a dict literal"
    namespace: dict[str, object] = {"__builtins__": builtins}

    def value(expr: ast.expr) -> object:
        try:
            return ast.literal_eval(expr)
        except ValueError:
            pass
        for name in sorted({n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}):
            if name in namespace or hasattr(builtins, name):
                continue
            if name in assigns:
                namespace[name] = value(assigns[name])
            elif name in imports:
                source, attr = imports[name]
                namespace[name] = getattr(importlib.import_module(source), attr)
            else:
                raise AssertionError(f"{module}: cannot resolve {name!r} in a parameter default")
        return eval(compile(ast.Expression(expr), str(path), "eval"), namespace)  # the repository's own source

    defaults = {}
    for key, entry in zip(table.keys, table.values):
        assert isinstance(key, ast.Constant) and isinstance(key.value, str), f"{module}: a non-string key"
        assert isinstance(entry, ast.Tuple) and len(entry.elts) == 2, f"{module}: {key.value} is not (default, text)"
        defaults[key.value] = value(entry.elts[0])
    return defaults


def _defining_module(module: Path, table_name: str) -> str:
    """Where the table passed to declare_all in `module` is defined (that module or one it imports)."""
    assigns, imports = _module_level(ast.parse(module.read_text()))
    if table_name in assigns:
        return module.relative_to(ROOT).as_posix()
    source, _ = imports[table_name]
    return source.replace(".", "/") + ".py"


def test_every_node_declares_through_a_checked_table():
    """No parameter is declared outside the tables this file checks."""
    found = set()
    for module in sorted((ROOT / "fmb_ros").glob("*.py")):
        tree = ast.parse(module.read_text())
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = getattr(call.func, "attr", getattr(call.func, "id", ""))
            if name == "declare_parameter" and module.name != "params.py":
                pytest.fail(f"{module.name}:{call.lineno} declares a parameter outside a PARAMETERS table")
            if name == "declare_all":
                table = call.args[1]
                assert isinstance(table, ast.Name), f"{module.name}:{call.lineno}: declare_all of a non-name"
                found.add(_defining_module(module, table.id))
    assert found == set(NODES.values()), f"declare_all tables {sorted(found)} != the checked {sorted(NODES.values())}"


# --- the README ------------------------------------------------------------------------------


def _sections() -> dict[str, str]:
    """Node executable -> the text of its `## \\`node\\` ...` section in fmb_ros/README.md."""
    sections = {}
    for part in re.split(r"^## ", README.read_text(), flags=re.M)[1:]:
        m = re.match(r"`(fmb_[a-z_]+)`", part)
        if m:
            sections[m.group(1)] = part
    return sections


def _tables(text: str) -> list[list[list[str]]]:
    """Markdown tables of `text`: rows of cells, the header row first, the separator row dropped."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(set(c) <= set("-: ") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and backticks."""
    parts, depth, code, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "`":
            code = not code
        elif ch in "[(" and not code:
            depth += 1
        elif ch in "])" and not code:
            depth -= 1
        elif ch == "," and not depth and not code:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _value(token: str) -> object:
    """A README default: `name` or "" -> str, true/false -> bool, a number or [list] -> as written."""
    token = token.strip()
    if token == '""':
        return ""
    if token.startswith("`") and token.endswith("`"):
        return token[1:-1]
    try:
        return ast.literal_eval(re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", token)))
    except (ValueError, SyntaxError):
        return token


def _same(documented: object, default: object) -> bool:
    """Equal and of the same ROS type (bool, integer, double, string, array)."""
    if isinstance(default, list | tuple):
        return (
            isinstance(documented, list | tuple)
            and len(documented) == len(default)
            and all(_same(a, b) for a, b in zip(documented, default))
        )
    if hasattr(default, "item"):  # a numpy scalar from a config dataclass
        default = default.item()
    if type(documented) is not type(default):
        return False
    if isinstance(default, float):  # as precise as the README writes it: 0.698 for 0.6981317 (40 deg)
        places = -Decimal(repr(documented)).as_tuple().exponent
        return math.isclose(documented, default, rel_tol=1e-12) or abs(documented - default) <= 0.5 * 10.0**-places
    return documented == default


def documented(node: str) -> tuple[dict[str, object], dict[str, list[str]], set[str]]:
    """What the README says of `node`.

    Returns (parameter table: name -> stated default, interface rows: parameter -> the names shown
    for it, every parameter named anywhere in the two kinds of table).
    """
    sections = _sections()
    assert node in sections, f"fmb_ros/README.md has no section for {node}"
    defaults: dict[str, object] = {}
    shown: dict[str, list[str]] = {}
    parameter_tables = 0
    for table in _tables(sections[node]):
        header = table[0]
        if header[:2] == ["Parameter", "Default"]:
            parameter_tables += 1
            for row in table[1:]:
                names = re.findall(r"`([^`]+)`", row[0])
                assert names, f"{node}: a parameter row without a `name`: {row[0]!r}"
                stated = re.sub(r"^`[^`]+`:\s*", "", row[1])  # "`sim.limits.DEFAULT_WORKSPACE`: [...]"
                values = _split_top_level(stated)
                assert len(values) == len(names), (
                    f"{node}: {len(names)} parameters {names} but {len(values)} defaults {row[1]!r} in one row"
                )
                for name, text in zip(names, values):
                    assert name not in defaults, f"{node}: `{name}` is in the parameter table twice"
                    defaults[name] = _value(text)
        elif "Name (parameter)" in header:
            column = header.index("Name (parameter)")
            for row in table[1:]:
                # "`joint_states` (`joint_states_topic`)", "`a`, `b` (`x_namespace`)", "`/tf` (`publish_tf`, ...)"
                for names, params in re.findall(r"((?:`[^`]+`(?:,\s*)?)+)\s*\(([^)]*)\)", row[column]):
                    for param in re.findall(r"`([^`]+)`", params):
                        if IDENTIFIER.fullmatch(param):
                            shown.setdefault(param, []).extend(re.findall(r"`([^`]+)`", names))
    assert parameter_tables, f"fmb_ros/README.md: the {node} section has no | Parameter | Default | table"
    return defaults, shown, set(defaults) | set(shown)


@pytest.mark.parametrize("node", sorted(NODES))
def test_readme_names_every_declared_parameter_and_no_other(node):
    declarations = declared(NODES[node])
    _, _, names = documented(node)
    unknown = sorted(names - set(declarations))
    missing = sorted(set(declarations) - names)
    assert not unknown, f"{node}: fmb_ros/README.md documents {unknown}, which {NODES[node]} does not declare"
    assert not missing, f"{node}: {NODES[node]} declares {missing}, missing from fmb_ros/README.md's tables"


@pytest.mark.parametrize("node", sorted(NODES))
def test_readme_defaults_are_the_declared_ones(node):
    declarations = declared(NODES[node])
    defaults, shown, _ = documented(node)
    wrong = [
        f"`{name}`: README {value!r}, declared {declarations[name]!r}"
        for name, value in defaults.items()
        if name in declarations and not _same(value, declarations[name])
    ]
    # A topic, service or action shown under its parameter is the parameter's default name; a namespace
    # parameter prefixes the names shown ("{skill}" in a default is written "<skill>" in the README).
    for param, names in shown.items():
        default = declarations.get(param)
        if not isinstance(default, str) or not default:
            continue
        default = re.sub(r"\{(\w+)\}", r"<\1>", default)
        if param.endswith(("_topic", "_service", "_action")):
            if names[0] != default:
                wrong.append(f"`{param}`: README shows `{names[0]}`, declared {default!r}")
        elif param.endswith("_namespace"):
            wrong += [
                f"`{param}`: README shows `{n}`, not under the declared {default!r}"
                for n in names
                if not n.startswith(default.rstrip("/") + "/")
            ]
    assert not wrong, f"{node}: fmb_ros/README.md disagrees with {NODES[node]}: " + "; ".join(wrong)
