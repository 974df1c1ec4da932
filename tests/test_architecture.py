"""The layering of core/: every import goes down the layers (or stays inside its package), and no
module imports itself back through others. Function-level imports count too: a lazy import is
still a dependency."""
import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "core"
# Lowest first: a package may import only from packages at its rank or below.
LAYERS = [("base",), ("tasks",), ("models", "sandbox"), ("evaluation",), ("lab",), ("decide",), ("views",),
          ("publish",), ("selfcheck",), ("flow",), ("cli",)]
RANK = {pkg: i for i, group in enumerate(LAYERS) for pkg in group}


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_imports(path: Path) -> set[str]:
    """Every core.* module this file imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("core.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("core"):
            for a in node.names:  # `from core.x import y` may name a module y
                sub = f"{node.module}.{a.name}"
                found.add(sub if (CORE.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                          or (CORE.parent / sub.replace(".", "/")).is_dir() else node.module)
    return found


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (CORE / parts[1]).is_dir() else None


MODULES = {module_name(p): p for p in CORE.rglob("*.py")}
GRAPH = {m: {i for i in core_imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_every_package_has_a_layer():
    packages = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(RANK), f"packages without a layer, or layers without a package: {packages ^ set(RANK)}"
    loose = sorted(m for m in MODULES if package_of(m) is None and m not in ("core", "core.__main__"))
    assert not loose, f"modules outside every package: {loose}"


def test_imports_go_down_the_layers():
    upward = []
    for module, imports in GRAPH.items():
        src = package_of(module)
        if src is None:
            continue
        for imported in imports:
            dst = package_of(imported)
            if dst is not None and RANK[dst] > RANK[src]:
                upward.append(f"{module} -> {imported} ({src} is below {dst})")
    assert not upward, "imports up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for nxt in sorted(GRAPH[m]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", ["core.base.store", "core.decide.gate"])
def test_the_walker_sees_imports(module):
    """Guard against a walker that finds nothing and so passes everything."""
    assert GRAPH[module], f"{module} should import something from core"


def test_core_never_imports_streamlit_at_module_level():
    offenders = [m for m, p in MODULES.items()
                 if any(isinstance(n, (ast.Import, ast.ImportFrom)) and "streamlit" in ast.unparse(n)
                        for n in ast.parse(p.read_text(encoding="utf-8")).body)]
    assert not offenders, f"core modules importing streamlit at import time: {offenders}"


def test_publishing_never_decides():
    """Publishing reads a decided value (stats.json, a GateResult); it never runs the comparison again."""
    deciding = {"run_gate", "paired_comparisons", "compare", "compare_many", "decide"}
    offenders = []
    for module, path in MODULES.items():
        if package_of(module) != "publish":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if isinstance(node, (ast.Attribute, ast.Name)) and name in deciding:
                offenders.append(f"{module}: {name}")
            if isinstance(node, ast.ImportFrom) and any(a.name in deciding for a in node.names):
                offenders.append(f"{module} imports {[a.name for a in node.names]}")
    assert not offenders, offenders
