"""The ``methods-table`` directive: ode-core's methods, read from the registry.

Every row is derived at build time from ``ode_core.TABLEAUX`` and
``ode_core.MULTISTEP`` (in the order of ``ode_core.METHODS``), so a method
added to the registry appears without
touching the docs. Only attributes every :class:`ode_core.ButcherTableau`
has are required (``name``, ``order``, ``a``, ``b``, ``c``); anything else
is read with a fallback, and a column that cannot be derived for a method
shows ``?`` rather than failing the build.

Columns:

- *order*: ``p`` for fixed-step methods, ``p(q)`` with the embedded order(s)
  for adaptive ones (``8(5,3)`` for DOP853);
- *stages*: function evaluations per step (rows of ``a``), with the explicit
  ones of an implicit method and the extra stages of a continuous extension;
- *adaptive*: whether the tableau carries an error estimate;
- *kind*: explicit, or implicit with the structure of ``a`` (SDIRK, ESDIRK,
  DIRK, or a full matrix) and "stiffly accurate" when ``b`` is the last row
  of ``a``;
- *R(-inf)*: the limit of the stability function ``R(z) = 1 + z b^T (I -
  zA)^{-1} 1`` as ``z -> -inf``, computed in exact rational arithmetic: 0
  damps infinitely stiff components, +-1 keeps them; explicit methods have a
  polynomial ``R``, unbounded;
- *dense output*: the tableau's continuous extension and its order, or the
  cubic Hermite interpolant; "steps onto outputs" when a short solve shows
  the solver landing on an interior output time instead of interpolating
  there (observed, not re-derived from the solver's rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any, ClassVar

COLUMNS = ("method", "order", "stages", "adaptive", "kind", "R(-inf)", "dense output")


def _matrix(tableau: Any) -> list[list[Fraction]]:
    size = len(tableau.c)
    return [[Fraction(v) for v in row] + [Fraction(0)] * (size - len(row)) for row in tableau.a]


def order_text(tableau: Any) -> str:
    """``p``, or ``p(q)`` / ``p(q,r)`` with the embedded orders."""
    embedded = [getattr(tableau, name, None) for name in ("embedded_order", "embedded_secondary_order")]
    embedded = [str(order) for order in embedded if order is not None]
    return f"{tableau.order}({','.join(embedded)})" if embedded else str(tableau.order)


def _explicit_stages(a: list[list[Fraction]]) -> int:
    return sum(all(v == 0 for v in row[i:]) for i, row in enumerate(a))


def stages_text(tableau: Any) -> str:
    """Stages per step, noting explicit stages of implicit methods and dense-output extra stages."""
    a = _matrix(tableau)
    text = str(len(a))
    explicit = _explicit_stages(a)
    if explicit not in (0, len(a)):
        text += f" ({explicit} explicit)"
    extra = len(getattr(tableau, "c_extra", ()) or ())
    if extra:
        text += f" (+{extra} for dense output)"
    return text


def is_explicit(tableau: Any) -> bool:
    """Whether ``a`` is strictly lower triangular."""
    a = _matrix(tableau)
    return all(v == 0 for i, row in enumerate(a) for v in row[i:])


def kind_text(tableau: Any) -> str:
    """explicit, or implicit with its structure."""
    a = _matrix(tableau)
    size = len(a)
    if is_explicit(tableau):
        return "explicit"
    lower = all(a[i][j] == 0 for i in range(size) for j in range(i + 1, size))
    if not lower:
        structure = "full matrix"
    else:
        diagonal = [a[i][i] for i in range(size)]
        implicit_diagonal = [d for d in diagonal if d != 0]
        same = len(set(implicit_diagonal)) == 1
        if same and len(implicit_diagonal) == size:
            structure = "SDIRK"
        elif same and diagonal[0] == 0 and len(implicit_diagonal) == size - 1:
            structure = "ESDIRK"
        else:
            structure = "DIRK"
    text = f"implicit ({structure})"
    if [Fraction(v) for v in tableau.b] == a[-1]:
        text += ", stiffly accurate"
    return text


def _solve_exact(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """Gaussian elimination with exact fractions (partial pivoting on nonzero)."""
    size = len(rhs)
    rows = [[*matrix[i], rhs[i]] for i in range(size)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [x - factor * y for x, y in zip(rows[r], rows[col])]
    return [rows[i][size] / rows[i][i] for i in range(size)]


def stability_at_infinity(tableau: Any) -> float:
    """``lim R(z)`` as ``z -> -inf`` (``inf`` for explicit methods).

    ``R`` is a ratio of polynomials, so ``R(-10**40)`` in exact arithmetic
    equals the limit to far better than the digits shown.
    """
    if is_explicit(tableau):
        return math.inf
    a = _matrix(tableau)
    size = len(a)
    z = Fraction(-(10**40))
    system = [[(1 if i == j else 0) - z * a[i][j] for j in range(size)] for i in range(size)]
    x = _solve_exact(system, [Fraction(1)] * size)
    return float(1 + z * sum(Fraction(bi) * xi for bi, xi in zip(tableau.b, x)))


def stability_text(tableau: Any) -> str:
    """``R(-inf)`` for implicit methods, rounded; "unbounded" for explicit ones."""
    value = stability_at_infinity(tableau)
    if math.isinf(value):
        return "unbounded"
    return "0" if abs(value) < 1e-9 else f"{value:.3g}"


def steps_onto_outputs(name: str) -> bool:
    """Whether an adaptive solve of ``y' = -y`` lands on an interior output time."""
    import numpy as np
    import ode_core

    inner = 0.3337
    sol = ode_core.solve(lambda t, y: -y, np.array([1.0]), [0.0, inner, 1.0], method=name, rtol=1e-6, atol=1e-9)
    return sol.dense is not None and any(abs(t - inner) < 1e-12 for t in sol.dense.t_steps)


def dense_text(tableau: Any, registered: bool) -> str:
    """The interpolant between steps: the tableau's continuous extension, or cubic Hermite."""
    dense_order = getattr(tableau, "dense_order", None)
    text = f"order {dense_order}" if dense_order is not None else "cubic Hermite"
    if registered and getattr(tableau, "b_embedded", None) is not None and steps_onto_outputs(tableau.name):
        text += " (steps onto outputs)"
    return text


def _cell(function: Any, *args: Any) -> str:
    try:
        return str(function(*args))
    except Exception:  # a column we cannot derive for this method
        return "?"


def method_rows(tableaux: Mapping[str, Any] | None = None, names: Sequence[str] | None = None) -> list[dict[str, str]]:
    """One dict per method, keyed by :data:`COLUMNS`, plus ``"citation"``.

    Parameters
    ----------
    tableaux : mapping of str to ButcherTableau, optional
        Default ``ode_core.TABLEAUX``.
    names : sequence of str, optional
        Order of the rows; default ``ode_core.METHODS`` (or the mapping's).

    Returns
    -------
    list of dict

    Examples
    --------
    >>> row = method_rows(names=["dopri5"])[0]
    >>> row["method"], row["order"], row["adaptive"]
    ('dopri5', '5(4)', 'yes')
    """
    import ode_core

    registered = tableaux is None
    if tableaux is None:
        tableaux = {
            **ode_core.TABLEAUX,
            **getattr(ode_core, "MULTISTEP", {}),
            **getattr(ode_core, "VARIABLE_ORDER", {}),
        }
        names = names if names is not None else getattr(ode_core, "METHODS", None)
    rows = []
    for name in names if names is not None else list(tableaux):
        tableau = tableaux[name]
        if hasattr(tableau, "steps") and hasattr(tableau, "starter"):
            rows.append(multistep_row(name, tableau))
            continue
        if hasattr(tableau, "kappa") and hasattr(tableau, "max_order"):
            rows.append(variable_order_row(name, tableau))
            continue
        if hasattr(tableau, "nonstiff") and hasattr(tableau, "stiff"):
            rows.append(switching_row(name, tableau))
            continue
        rows.append(
            {
                "method": name,
                "order": _cell(order_text, tableau),
                "stages": _cell(stages_text, tableau),
                "adaptive": _cell(lambda t: "yes" if getattr(t, "b_embedded", None) is not None else "no", tableau),
                "kind": _cell(kind_text, tableau),
                "R(-inf)": _cell(stability_text, tableau),
                "dense output": _cell(dense_text, tableau, registered),
                "citation": str(getattr(tableau, "citation", "") or ""),
            }
        )
    return rows


def multistep_row(name: str, method: Any) -> dict[str, str]:
    """The row of an :class:`ode_core.AdamsMethod`: fixed steps on its slopes, started by a one-step method.

    Examples
    --------
    >>> import ode_core
    >>> row = multistep_row("adams_bashforth", ode_core.MULTISTEP["adams_bashforth"])
    >>> row["order"], row["stages"], row["kind"]
    ('4', '4 slopes (rk38 starts)', 'explicit multistep (Adams-Bashforth)')
    """
    kind = "predictor-corrector, P(EC)^m E" if method.corrector else "Adams-Bashforth"
    return {
        "method": name,
        "order": str(method.order),
        "stages": f"{method.steps} slopes ({method.starter.name} starts)",
        "adaptive": "no",
        "kind": f"explicit multistep ({kind})",
        "R(-inf)": "unbounded",
        "dense output": "cubic Hermite",
        "citation": str(method.citation or ""),
    }


def variable_order_row(name: str, method: Any) -> dict[str, str]:
    """The row of an :class:`ode_core.BDFMethod`: variable step and order, one Newton solve a step.

    Examples
    --------
    >>> import ode_core
    >>> row = variable_order_row("bdf", ode_core.VARIABLE_ORDER["bdf"])
    >>> row["order"], row["adaptive"], row["R(-inf)"]
    ('1-5', 'yes (step and order)', '0')
    """
    return {
        "method": name,
        "order": f"1-{method.max_order}",
        "stages": "1 implicit (Newton)",
        "adaptive": "yes (step and order)",
        "kind": "implicit multistep (NDF, quasi-constant steps)",
        # The BDFs/NDFs are stiffly stable: R(z) -> 0 as z -> -inf at every order.
        "R(-inf)": "0",
        "dense output": "order of the step (backward differences)",
        "citation": str(method.citation or ""),
    }


def switching_row(name: str, method: Any) -> dict[str, str]:
    """The row of an :class:`ode_core.AutoMethod`: a non-stiff method and a stiff one, switched.

    Examples
    --------
    >>> import ode_core
    >>> switching_row("auto", ode_core.VARIABLE_ORDER["auto"])["kind"]
    'implicit when stiff (switching: dopri5 while non-stiff, bdf while stiff)'
    """
    return {
        "method": name,
        "order": f"{method.nonstiff.order} / 1-{method.stiff.max_order}",
        "stages": f"{method.nonstiff.n_stages} / 1 implicit (Newton)",
        "adaptive": "yes (and the method)",
        "kind": (
            f"implicit when stiff (switching: {method.nonstiff.name} while non-stiff, {method.stiff.name} while stiff)"
        ),
        "R(-inf)": "0 while stiff",
        "dense output": "the active method's",
        "citation": str(method.citation or ""),
    }


def _methods_table_directive() -> type:
    """The ``methods-table`` directive class (docutils and Sphinx imported
    only here, so that the tests can use this module without them)."""
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    def table(rows: list[dict[str, str]]) -> Any:
        node = nodes.table(classes=["methods-table"])
        group = nodes.tgroup(cols=len(COLUMNS))
        node += group
        for _ in COLUMNS:
            group += nodes.colspec(colwidth=1)
        head = nodes.thead()
        group += head
        header = nodes.row()
        for title in COLUMNS:
            header += nodes.entry("", nodes.paragraph(text=title))
        head += header
        body = nodes.tbody()
        group += body
        for values in rows:
            row = nodes.row()
            for column in COLUMNS:
                text = values[column]
                content = nodes.literal(text=text) if column == "method" else nodes.Text(text)
                row += nodes.entry("", nodes.paragraph("", "", content))
            body += row
        return node

    def citations(rows: list[dict[str, str]]) -> Any:
        node = nodes.bullet_list()
        for values in rows:
            paragraph = nodes.paragraph()
            paragraph += nodes.literal(text=values["method"])
            paragraph += nodes.Text(": " + (values["citation"] or "no citation recorded"))
            node += nodes.list_item("", paragraph)
        return node

    class MethodsTable(SphinxDirective):
        """``methods-table``: the registry as a table; ``:citations:`` adds the sources."""

        has_content = False
        option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {"citations": lambda argument: True}

        def run(self) -> list[Any]:
            """Build the table (and the citation list) from ``ode_core.TABLEAUX``."""
            rows = method_rows()
            return [table(rows), citations(rows)] if "citations" in self.options else [table(rows)]

    return MethodsTable


def setup(app: Any) -> dict[str, Any]:
    """Register the directive (Sphinx extension entry point)."""
    app.add_directive("methods-table", _methods_table_directive())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
