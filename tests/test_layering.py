"""The package's layers (docs/design.md): each part of mnistlite imports only the parts below it.

The table here is the contract; docs/design.md shows the same one. ``nn`` imports numpy and itself only,
and nothing in mnistlite imports ``service``, ``scripts``, ``benchmarks`` or ``tests``.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mnistlite"
EVERYTHING = {"nn", "images", "data", "quality", "release", "cli", "files", "metrics", "serialize",
              "recipe", "threads", "drift", "mnistlite"}
# part -> the parts of mnistlite it may import (itself always)
ALLOWED = {
    "nn": set(),
    "files": set(),
    "metrics": set(),
    "threads": set(),
    "drift": set(),
    "images": {"nn", "files", "metrics"},
    "data": {"images", "nn", "files", "metrics"},
    "quality": {"data", "images", "nn", "files", "metrics"},
    "serialize": {"nn", "images", "files", "mnistlite"},
    "recipe": {"nn", "images", "data", "metrics", "threads", "drift"},
    "release": {"data", "quality", "images", "nn", "serialize", "files", "metrics", "drift"},
    "cli": EVERYTHING,
    "mnistlite": EVERYTHING,
}
NEVER = {"service", "scripts", "benchmarks", "tests"}
# Outside the standard library, nn/ may import only these.
NN_THIRD_PARTY = {"numpy"}


def part_of(module: str) -> str:
    """'mnistlite.nn.model' -> 'nn'; 'mnistlite.serialize' -> 'serialize'; 'mnistlite' -> 'mnistlite'."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "mnistlite"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    names = list(rel.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def imports(source: str, module: str, is_package: bool) -> list[str]:
    """Every module ``source`` imports (at any depth, lazy imports included), relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
                # 'from . import ink' names a module, 'from . import __version__' a name in one
                found += [f"{target}.{a.name}" if not node.module and _is_module(f"{target}.{a.name}")
                          else target for a in node.names]
            else:
                found.append(node.module)
    return found


def violations(path: Path, source: str | None = None) -> list[str]:
    """The imports of one file of the package that the table does not allow."""
    module = module_name(path)
    part = part_of(module)
    source = path.read_text() if source is None else source
    bad = []
    for target in imports(source, module, path.name == "__init__.py"):
        top = target.split(".")[0]
        if top in NEVER:
            bad.append(f"{module} imports {target}: mnistlite never imports {top}")
        elif top == "mnistlite":
            other = part_of(target)
            if other != part and other not in ALLOWED[part]:
                bad.append(f"{module} imports {target}: {part} may import only "
                           f"{sorted(ALLOWED[part]) or 'itself'}")
        elif part == "nn" and top not in sys.stdlib_module_names and top not in NN_THIRD_PARTY:
            bad.append(f"{module} imports {target}: nn imports numpy and the standard library only")
    return bad


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_is_in_the_table():
    parts = {part_of(module_name(p)) for p in FILES}
    assert parts <= set(ALLOWED), f"parts missing from the layering table: {parts - set(ALLOWED)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    assert violations(path) == []


@pytest.mark.parametrize("planted, part", [
    ("from ..images import preprocess\n", "nn"),
    ("import PIL.Image\n", "nn"),
    ("from ..release.gate import Policy\n", "data"),
    ("from service.app import create_app\n", "release"),
    ("def f():\n    from mnistlite.cli import train\n", "images"),
])
def test_a_planted_bad_import_is_caught(planted, part):
    """The checker itself: a file with one forbidden import (lazy ones too) is reported."""
    path = PACKAGE / part / "planted.py"
    assert len(violations(path, planted)) == 1
