"""The package's layers: each part of edge imports only from its own package and the layers below it."""

import ast
from pathlib import Path

from support.paths import ROOT

EDGE = ROOT / "edge"

# Lowest first. A package may import from any package of a lower layer, never from its own layer or above.
LAYERS = [
    {"types"},
    {"storage", "wire"},
    {"audio"},
    {"inference"},
    {"screen", "events", "clips"},
    {"sources", "sinks"},
    {"pipeline", "evaluation"},
    {"report"},  # draws evaluation's records and numbers
    {"app"},
    {"station"},
    {"cli"},
    {"__main__"},
]
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """The package (or top-level module) of `edge` a dotted module name belongs to."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    """The modules of edge that `path` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edge."):
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == "edge":
            found.update(f"edge.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("edge."))
    return found


def test_every_module_belongs_to_a_layer():
    parts = {
        p.stem if p.is_file() else p.name
        for p in EDGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert parts == set(LAYER_OF)


def test_imports_only_go_down():
    upward = []
    for path in sorted(EDGE.rglob("*.py")):
        relative = path.relative_to(EDGE.parent).with_suffix("")
        if relative.name == "__init__" and len(relative.parts) == 2:
            continue
        own = part_of(".".join(relative.parts)) if len(relative.parts) > 1 else relative.name
        for module in imports(path):
            other = part_of(module)
            if other != own and LAYER_OF[other] >= LAYER_OF[own]:
                upward.append(f"{relative}: {module}")
    assert upward == []
