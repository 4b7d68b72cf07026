"""Sphinx configuration of the neural-ode toolkit's documentation.

Build with ``nox -s docs`` (warnings are errors, references nitpicky); the
pages are MyST Markdown, the API reference is autodoc with numpydoc. The
build reads nothing from the network: no intersphinx, and external types
that docstrings name are listed in ``nitpick_ignore_regex`` below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ode_adjoint
import ode_core
import ode_models

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "neural-ode toolkit"
author = "the neural-ode toolkit developers"
copyright = "2026, the neural-ode toolkit developers"
release = f"ode-core {ode_core.__version__}, ode-adjoint {ode_adjoint.__version__}, ode-models {ode_models.__version__}"
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "command_output",  # docs/_ext: `ode-models train --help`, run at build time
    "methods_table",  # docs/_ext: the methods table, from ode_core.TABLEAUX
    "public_api",  # docs/_ext: docstrings of public constants, NamedTuple fields
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "_generated", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# MyST: $...$ and $$...$$ math, labelled equations, ::: fences.
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "neural-ode toolkit"
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# autodoc: signatures without annotations (the numpydoc sections carry the
# types, with shapes); members in source order.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
autoclass_content = "class"
# A method without a docstring of its own (an override such as
# ``nn.Module.extra_repr``) is left out rather than shown with torch's text.
autodoc_inherit_docstrings = False

# numpydoc: no autosummary tables of class members (autodoc lists them).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Nitpicky references without intersphinx (the build is offline): names of
# other libraries' types that docstrings mention cannot resolve here.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|torch|nn|fractions|collections|typing|types|os|pathlib|enum|dataclasses)(\..*)?"),
    (r"py:.*", r"(Tensor|Module|Fraction|Path|PathLike|Any|Callable|Sequence|Mapping|MappingProxyType)"),
]
