"""The package's import graph stays layered: every import (module level or inside a function;
``if TYPE_CHECKING:`` blocks aside) goes from a higher layer to a lower one, so there are no
import circles and nothing imports upward.

A new module goes into ``LAYERS`` at the lowest layer above everything it imports. Built-in
plug-in packages (``vision``) are imported by name through :mod:`textransfer._builtins` (a
registry's loader), which is not an import edge: ``encoders`` and ``data`` know nothing of them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import textransfer

PACKAGE = Path(textransfer.__file__).parent

# Lowest first. A unit is a top-level module or subpackage; each experiment kind is its own unit.
LAYERS: list[list[str]] = [
    ["_optional", "_builtins", "_progress", "distributed", "_folders", "_seeds"],
    ["_registry", "resources", "_modelfolder", "precision"],
    ["data", "evaluation"],
    # Component, overrides, YAML load/dump: no registries, no training types.
    ["config"],
    ["encoders", "heads", "tracking"],
    ["vision", "onnx_classifier", "training"],
    ["hub"],
    ["classifier"],
    ["strategies", "export", "prediction"],
    ["model_outputs"],
    ["estimation"],
    ["evaluating", "serving"],
    ["experiments._analysis", "experiments._kernel"],
    ["experiments.train", "experiments.crossdomain", "experiments.curve", "experiments.layers"],
    ["experiments"],
    # Old import paths, kept for user code: "moved to textransfer.experiments..." re-exports.
    ["runner", "crossdomain", "crossdomain_config", "analyses", "estimator", "tuning"],
    ["cli"],
    ["__init__"],
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _unit(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    if parts[0] == "experiments" and len(parts) >= 2:
        return f"experiments.{parts[1]}"
    return parts[0]


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _runtime_imports(path: Path) -> set[str]:
    """``textransfer`` modules imported by ``path`` at run time (``TYPE_CHECKING`` blocks aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "textransfer":
                continue
            # `from textransfer import tracking` imports the module textransfer.tracking; any
            # other name comes from the module itself.
            submodules = [f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")]
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "textransfer")
    return found


def _graph() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(importing module, imported unit)} for imports that cross units."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for target in _runtime_imports(path):
            if target == "textransfer":
                target_unit = "__init__"
            else:
                target_unit = _unit(target)
            if target_unit != _unit(module):
                edges[_unit(module)].add((module, target_unit))
    return edges


def _layer_of() -> dict[str, int]:
    return {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def test_every_unit_has_a_layer() -> None:
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    missing = sorted(units - set(_layer_of()))
    assert not missing, f"place these in LAYERS (tests/test_import_graph.py): {missing}"


def test_imports_only_go_down_the_layers() -> None:
    layer = _layer_of()
    upward = sorted(
        f"{module} imports {target} (layer {layer.get(target)} >= {layer.get(unit)})"
        for unit, pairs in _graph().items()
        for module, target in pairs
        if target in layer and unit in layer and layer[target] >= layer[unit]
    )
    assert not upward, "imports that go up or sideways:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    ("low", "high"),
    [("evaluation", "experiments.crossdomain"), ("data", "vision"), ("encoders", "vision"), ("training", "encoders")],
)
def test_named_packages_do_not_import_each_other_upward(low: str, high: str) -> None:
    """The circles the layout once had stay broken (whatever LAYERS says)."""
    assert not [m for m, t in _graph().get(low, set()) if t == high]


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    """The walker counts imports inside functions and skips TYPE_CHECKING blocks."""
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from textransfer.cli import main\n"
        "def f():\n    from textransfer.experiments import EXPERIMENTS\n    import textransfer.vision\n"
    )
    assert _runtime_imports(src) == {"textransfer.experiments", "textransfer.vision"}
