"""Honest dependencies (issue 25, item 6): what vmae/ imports is declared in pyproject.toml, the conda
environment of the rules declares the same, and constraints.txt pins every declared package."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

REPO = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "pyyaml", "libarchive": "libarchive-c", "PIL": "pillow"}


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def by_name(lines: list[str]) -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in requirements}


def base_dependencies() -> dict[str, Requirement]:
    return by_name(project()["dependencies"])


def extra_dependencies() -> dict[str, Requirement]:
    return by_name([line for lines in project()["optional-dependencies"].values() for line in lines])


def conda_pip_dependencies() -> dict[str, Requirement]:
    env = yaml.safe_load((REPO / "workflow" / "envs" / "vmae.yaml").read_text())
    pip = [item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item]
    assert len(pip) == 1, "workflow/envs/vmae.yaml: expected one `pip:` list"
    return by_name(pip[0])


def imports(node: ast.AST, in_function: bool = False) -> Iterator[tuple[str, bool]]:
    """(top-level module name, imported inside a function) of every absolute import below ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            yield from ((alias.name.split(".")[0], in_function) for alias in child.names)
        elif isinstance(child, ast.ImportFrom) and child.level == 0:
            yield child.module.split(".")[0], in_function
        inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        yield from imports(child, inside)


def third_party_imports() -> dict[str, tuple[str, bool]]:
    """Distribution name -> (a file importing it, whether every import of it is inside a function)."""
    found: dict[str, tuple[str, bool]] = {}
    for path in sorted((REPO / "vmae").rglob("*.py")):
        for module, lazy in imports(ast.parse(path.read_text(), str(path))):
            if module in sys.stdlib_module_names or module == "vmae":
                continue
            name = canonicalize_name(DISTRIBUTIONS.get(module, module))
            first_file, all_lazy = found.get(name, (str(path.relative_to(REPO)), True))
            found[name] = (first_file, all_lazy and lazy)
    return found


def test_the_import_names_map_to_the_installed_distributions():
    installed = importlib.metadata.packages_distributions()
    for module, distribution in DISTRIBUTIONS.items():
        if module in installed:
            assert distribution in {canonicalize_name(d) for d in installed[module]}, module


def test_every_import_of_vmae_is_a_declared_dependency():
    base, extras = base_dependencies(), extra_dependencies()
    for name, (file, lazy) in third_party_imports().items():
        assert name in base or name in extras, f"{file} imports {name}: not declared in pyproject.toml"
        if name not in base or base[name].marker is not None:
            assert lazy, f"{file} imports {name} at module level: it is optional or platform-bound, so import it " \
                         "inside the function that needs it"


def test_no_base_dependency_goes_unused():
    """A base dependency vmae/ never imports is there for a reason written down here."""
    needed_without_import = {"snakemake": "runs the workflow", "tabulate": "pandas.DataFrame.to_markdown"}
    unused = base_dependencies().keys() - third_party_imports().keys() - needed_without_import.keys()
    assert not unused, f"declared in pyproject.toml but never imported by vmae/: {sorted(unused)}"


def test_the_conda_environment_declares_what_pyproject_declares():
    base, conda = base_dependencies(), conda_pip_dependencies()
    assert conda.keys() == base.keys()
    for name, requirement in base.items():
        assert (conda[name].specifier, conda[name].marker and str(conda[name].marker)) == \
               (requirement.specifier, requirement.marker and str(requirement.marker)), name


def test_constraints_pin_every_dependency_within_its_floor():
    pins = by_name([line for line in (REPO / "constraints.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")])
    assert all(str(pin.specifier).startswith("==") for pin in pins.values())
    for name, requirement in {**extra_dependencies(), **base_dependencies()}.items():
        assert name in pins, f"constraints.txt: no pin of {name}"
        assert requirement.specifier.contains(str(pins[name].specifier)[2:]), f"constraints.txt: {pins[name]}"
