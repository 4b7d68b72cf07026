"""Every public name of the three packages is documented, numpydoc style.

The public names are each package's ``__all__``. The rule, strict but
satisfiable:

- a function or class has a docstring of its own (not inherited);
- a function or method that takes arguments has a ``Parameters`` section,
  and one that returns something (its annotation is not ``None``) a
  ``Returns`` or ``Yields`` section;
- a class whose constructor takes arguments (enums aside) has a
  ``Parameters`` or ``Attributes`` section;
- the public methods and properties a class defines have docstrings under
  the same rules, except overrides of hooks that a torch or standard-library
  base class documents (``extra_repr``); ``forward`` is never exempt;
- a constant has a docstring: a string literal right after its assignment
  in the module that defines it (``docs/_ext/public_api.py`` finds it, and
  the API reference shows it).
"""

from __future__ import annotations

import enum
import functools
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_public_api() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_docs_public_api", ROOT / "docs" / "_ext" / "public_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


public_api = _load_public_api()


def _has_section(doc: str, *titles: str) -> bool:
    return any(re.search(rf"^{title}\n-{{{len(title)}}}$", doc, flags=re.MULTILINE) for title in titles)


def _function_problems(function: Any, where: str, *, is_method: bool) -> Iterator[str]:
    doc = function.__doc__
    if not doc or not doc.strip():
        yield f"{where}: no docstring"
        return
    doc = inspect.cleandoc(doc)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # pragma: no cover - builtins only
        return
    parameters = list(signature.parameters.values())
    if is_method and parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    if parameters and not _has_section(doc, "Parameters"):
        yield f"{where}: takes {', '.join(p.name for p in parameters)} but has no Parameters section"
    returns = signature.return_annotation
    returns_something = returns is not inspect.Signature.empty and returns not in (None, "None")
    if returns_something and not _has_section(doc, "Returns", "Yields"):
        yield f"{where}: returns {returns} but has no Returns section"


def _overrides_a_foreign_hook(cls: type, name: str) -> bool:
    """Whether ``name`` overrides a method that a base class from outside the
    packages defines and documents (``extra_repr`` of ``torch.nn.Module``).
    ``forward`` is not exempt: its shapes are the module's contract."""
    return name != "forward" and any(
        name in vars(base) and public_api.package_of(base.__module__) is None for base in cls.__mro__[1:]
    )


def _own_members(cls: type) -> Iterator[tuple[str, Any]]:
    for name, member in vars(cls).items():
        if name.startswith("_") or _overrides_a_foreign_hook(cls, name):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            yield name, member.__func__
        elif inspect.isfunction(member) or isinstance(member, (property, functools.cached_property)):
            yield name, member


def _class_problems(cls: type, where: str) -> Iterator[str]:
    doc = vars(cls).get("__doc__")
    if not doc or not doc.strip():
        yield f"{where}: no docstring of its own"
        return
    doc = inspect.cleandoc(doc)
    if not issubclass(cls, enum.Enum):
        try:
            takes_arguments = bool(inspect.signature(cls).parameters)
        except (TypeError, ValueError):  # pragma: no cover
            takes_arguments = False
        if takes_arguments and not _has_section(doc, "Parameters", "Attributes"):
            yield f"{where}: its constructor takes arguments but it has no Parameters or Attributes section"
    for name, member in _own_members(cls):
        member_where = f"{where}.{name}"
        if isinstance(member, (property, functools.cached_property)):
            getter = member.fget if isinstance(member, property) else member.func
            if not (getter.__doc__ or "").strip():
                yield f"{member_where}: property without docstring"
        else:
            yield from _function_problems(member, member_where, is_method=True)


def _problems(package: str) -> list[str]:
    module = importlib.import_module(package)
    problems: list[str] = []
    for name in public_api.public_names(package):
        value = getattr(module, name)
        where = f"{package}.{name}"
        if inspect.isclass(value):
            problems.extend(_class_problems(value, where))
        elif inspect.isroutine(value):
            problems.extend(_function_problems(value, where, is_method=False))
        elif public_api.is_constant(value) and not public_api.constant_docstring(package, name):
            problems.append(f"{where}: constant without a docstring after its assignment")
    return problems


@pytest.mark.parametrize("package", public_api.PACKAGES)
def test_every_public_name_is_documented(package: str) -> None:
    problems = _problems(package)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", public_api.PACKAGES)
def test_package_has_a_module_docstring_with_an_example(package: str) -> None:
    doc = importlib.import_module(package).__doc__ or ""
    assert _has_section(inspect.cleandoc(doc), "Examples")
    assert ">>>" in doc


def test_the_rule_catches_an_undocumented_function() -> None:
    def undocumented(x: int) -> int:
        return x

    def documented(x: int) -> int:
        """Return ``x``.

        Parameters
        ----------
        x : int

        Returns
        -------
        int
        """
        return x

    assert list(_function_problems(undocumented, "f", is_method=False)) == ["f: no docstring"]
    assert list(_function_problems(documented, "f", is_method=False)) == []
    documented.__doc__ = "Return ``x``."
    assert len(list(_function_problems(documented, "f", is_method=False))) == 2
