"""The package's shape, read from its source with ``ast`` (function-level imports included):
no import cycle between files, dependencies that flow one way, no file a reader cannot hold."""
import ast
import os

import pytest

from helpers import ROOT

PACKAGE = os.path.join(ROOT, "rdrop_paddle")
MAX_LINES = 300


def _modules() -> dict[str, str]:
    """Module name -> file, for every ``.py`` file of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].replace(os.sep, ".")
                found[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(folder, name)
    return found


def _imports(name: str, path: str, modules: dict) -> set[str]:
    """The package's modules that ``name`` imports by name anywhere in its file (``from a.b
    import c`` is ``a.b.c`` when that is a module, else ``a.b``; a parent package that Python
    runs first is not counted: a package importing its own modules is not a cycle)."""
    is_package = path.endswith("__init__.py")
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = name.split(".")[:len(name.split(".")) - node.level + is_package]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


MODULES = _modules()
GRAPH = {name: _imports(name, path, MODULES) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as the list of its modules), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_files():
    assert len(GRAPH) > 50 and GRAPH["rdrop_paddle.config.load"] >= {"rdrop_paddle.config.checks"}
    found = _cycle(GRAPH)
    assert found is None, "import cycle: " + " -> ".join(found)


# tools -> commands -> tasks -> engine -> models, losses, data; convert -> models; deploy -> data.
# A room may import the base modules (errors, compat, io, config, cpu, utils) and the rooms listed.
BASE = {"errors", "compat", "io", "config", "cpu", "utils"}
ALLOWED = {
    "models": set(), "losses": set(), "data": set(), "convert": {"models"}, "engine": {"models", "losses", "data"},
    "deploy": {"data"}, "alignment": {"models", "losses", "data", "engine", "convert", "deploy"},
    "config": {"data"},  # config.checks parses Data.auto_augment's policy string with its parser
    "tasks": {"models", "losses", "data", "engine", "deploy"},
    "commands": {"models", "losses", "data", "engine", "convert", "deploy", "alignment", "tasks", "cli"},
    "cli": {"commands"},
}


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_dependencies_flow_one_way(room):
    wrong = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() if _room(m) == room for t in targets
                   if _room(t) not in BASE | ALLOWED[room] | {room})
    assert not wrong, "\n".join(wrong)


def test_no_file_a_reader_cannot_hold():
    long = []
    for top in ("rdrop_paddle", "tools", "benchmarks"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    n = sum(1 for _ in open(path, encoding="utf-8"))
                    if n > MAX_LINES:
                        long.append(f"{os.path.relpath(path, ROOT)}: {n} lines")
    assert not long, "\n".join(long)


def test_every_script_compiles():
    """Scripts outside the package (tools, benchmarks) that no test imports still parse."""
    broken = []
    for top in ("tools", "benchmarks"):
        for name in sorted(os.listdir(os.path.join(ROOT, top))):
            if name.endswith(".py"):
                path = os.path.join(ROOT, top, name)
                try:
                    compile(open(path, encoding="utf-8").read(), path, "exec")
                except SyntaxError as e:
                    broken.append(f"{top}/{name}:{e.lineno}: {e.msg}")
    assert not broken, "\n".join(broken)


def test_one_version():
    import re

    import rdrop_paddle

    pyproject = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    assert re.search(r'^version = "([^"]+)"', pyproject, flags=re.M).group(1) == rdrop_paddle.__version__
    assert f"## {rdrop_paddle.__version__}" in open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8").read()
