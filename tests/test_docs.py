"""Every public name has an API reference entry, and every entry exists."""

import ast
import importlib
import inspect
import re
import types
from pathlib import Path

import latentgeo

API_DIR = Path(__file__).resolve().parents[1] / "docs" / "api"


def _documented() -> set[str]:
    """Identifiers of the `::: latentgeo.X` directives in docs/api/*.md."""
    pattern = re.compile(r"^:::\s+(\S+)\s*$", re.MULTILINE)
    return {
        name
        for page in API_DIR.glob("*.md")
        for name in pattern.findall(page.read_text())
    }


def _exports(module: types.ModuleType) -> list[str]:
    """A module's public names: `__all__`, or else its re-exports
    (`from ._x import y as y`, `from . import sub as sub`)."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    tree = ast.parse(inspect.getsource(module))
    return [
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    ]


def _public_names(module: types.ModuleType) -> list[str]:
    """Dotted names of all public objects, descending into public submodules."""
    names = []
    for name in _exports(module):
        value = getattr(module, name)
        dotted = f"{module.__name__}.{name}"
        names.append(dotted)
        if isinstance(value, types.ModuleType):
            names += _public_names(value)
    return names


def test_every_public_name_is_documented():
    names = _public_names(latentgeo)
    assert {"latentgeo.geodesic", "latentgeo.plot.latents"} <= set(names)
    documented = _documented()
    # A function, class or module re-exported under a second name (the top-level
    # `latentgeo.encode` of `latentgeo.training.encode`) is documented once.
    documented_objects = [_resolve(name) for name in documented]
    missing = sorted(
        name
        for name in set(names) - documented
        if not (
            _is_definition(value := _resolve(name))
            and any(value is other for other in documented_objects)
        )
    )
    assert not missing, f"Add `::: name` entries to a docs/api/*.md page: {missing}"


def _resolve(dotted: str) -> object:
    """Import the longest module prefix of `dotted`, then follow attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(dotted)


def _is_definition(value: object) -> bool:
    return (
        inspect.isfunction(value) or inspect.isclass(value) or inspect.ismodule(value)
    )


def test_every_documented_name_exists():
    for dotted in sorted(_documented()):
        _resolve(dotted)
