"""The public API of the three packages, as the docs and the tests see it.

The public names of a package are its ``__all__``. Functions and classes
carry their own docstrings; module-level constants (``ode_core.METHODS``,
``ode_models.MODELS``, ...) are documented by a string literal right after
their assignment in the module that defines them, which Python does not
attach to the value. :func:`constant_docstring` finds that string, so the
Sphinx hooks below can show it under the package's public name and
``tests/test_docstrings.py`` can require it.

As a Sphinx extension (``extensions = ["public_api"]``) this module adds
the ``public-constants`` directive, which documents every constant of a
package's ``__all__`` with that docstring; escapes the unpacking ``*`` of
shapes such as ``(m, *y0.shape)`` that numpydoc types and descriptions use,
which reST would read as emphasis; and hides the "Alias for field number N"
docstrings of NamedTuple fields (their meaning is in the class's Attributes
section).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import re
from functools import cache
from pathlib import Path
from typing import Any

PACKAGES = ("ode_core", "ode_adjoint", "ode_models")


def public_names(package: str) -> list[str]:
    """The names in ``package.__all__``, in their listed order."""
    return list(importlib.import_module(package).__all__)


def is_constant(value: Any) -> bool:
    """Whether a public object is data (not a module, class or routine)."""
    return not (inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value))


@cache
def _attribute_docstrings(package: str) -> dict[str, str]:
    """Every ``NAME = value`` followed by a string literal, over the package's sources."""
    root = Path(importlib.import_module(package).__file__ or "").parent
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for node, following in itertools.pairwise(body):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            elif isinstance(node, ast.AnnAssign):
                target = node.target
            else:
                continue
            if (
                isinstance(target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                found.setdefault(target.id, inspect.cleandoc(following.value.value))
    return found


def constant_docstring(package: str, name: str) -> str | None:
    """The docstring of the public constant ``package.name``, or ``None``."""
    return _attribute_docstrings(package).get(name)


def package_of(name: str) -> str | None:
    """The package that the dotted ``name`` belongs to, or ``None``."""
    for package in PACKAGES:
        if name == package or name.startswith(package + "."):
            return package
    return None


# A ``*`` that unpacks a shape, as in ``(m, *y0.shape)``, is emphasis to
# reST: after "(" or ", ", before a dotted name that ")" "]" or "," ends.
_SHAPE_STAR = re.compile(r"(?:(?<=\()|(?<=, ))\*(?=[A-Za-z_][\w.]*[)\],])")


def escape_shape_stars(line: str) -> str:
    """Escape the unpacking ``*`` of shapes outside inline literals and doctests.

    Examples
    --------
    >>> escape_shape_stars("ys : array, shape (m, *y0.shape)")
    'ys : array, shape (m, \\\\*y0.shape)'
    >>> escape_shape_stars("Hairer, *Solving ODEs I*, and ``(m, *shape)``")
    'Hairer, *Solving ODEs I*, and ``(m, *shape)``'
    """
    if line.lstrip().startswith((">>>", "...")):
        return line
    parts = line.split("``")
    for index in range(0, len(parts), 2):  # even parts lie outside ``literals``
        parts[index] = _SHAPE_STAR.sub(r"\\*", parts[index])
    return "``".join(parts)


def _process_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if package_of(name) is not None:
        lines[:] = [escape_shape_stars(line) for line in lines]


def _skip_member(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    doc = getattr(obj, "__doc__", None)
    if what == "class" and isinstance(doc, str) and doc.startswith("Alias for field number"):
        return True
    return None


def _public_constants_directive() -> type:
    """The ``public-constants`` directive class (Sphinx imported only here,
    so that the tests can use this module without Sphinx installed)."""
    from sphinx.util.docutils import SphinxDirective

    class PublicConstants(SphinxDirective):
        """``.. public-constants:: PACKAGE``: every constant of ``PACKAGE.__all__``.

        autodoc cannot document a constant that a package imports from a
        private module (its docstring lives there); this directive writes a
        ``py:data`` entry for each, with the docstring found by
        :func:`constant_docstring` and the value when it is short.
        """

        required_arguments = 1
        has_content = False

        def run(self) -> list[Any]:
            """Parse the generated ``py:data`` entries."""
            return self.parse_text_to_nodes("\n".join(constant_entries(self.arguments[0])))

    return PublicConstants


def constant_entries(package: str) -> list[str]:
    """reST lines: a ``py:data`` entry per public constant of ``package``."""
    module = importlib.import_module(package)
    text: list[str] = []
    for name in public_names(package):
        value = getattr(module, name)
        if not is_constant(value):
            continue
        text += [f".. py:data:: {name}", f"   :module: {package}"]
        shown = repr(value)
        if len(shown) <= 100:
            text.append(f"   :value: {shown}")
        text.append("")
        text += [
            f"   {escape_shape_stars(line)}" if line else ""
            for line in (constant_docstring(package, name) or "").splitlines()
        ]
        text.append("")
    return text


def setup(app: Any) -> dict[str, Any]:
    """Register the autodoc hooks (Sphinx extension entry point)."""
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("autodoc-skip-member", _skip_member)
    app.add_directive("public-constants", _public_constants_directive())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
