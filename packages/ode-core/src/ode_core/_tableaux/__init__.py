"""The registry of methods: Butcher tableaux and Adams methods, one module per method (or family)."""

from __future__ import annotations

from types import MappingProxyType

from .._adams import AdamsMethod
from .._auto import AutoMethod
from .._bdf import BDF, BDFMethod
from .._tableau import ButcherTableau
from .adams import ADAMS_BASHFORTH, ADAMS_BASHFORTH_MOULTON, EXPLICIT_ADAMS, IMPLICIT_ADAMS
from .backward_euler import BACKWARD_EULER
from .bosh3 import BOSH3
from .cash_karp import CASH_KARP
from .dopri5 import DOPRI5
from .dopri8 import DOPRI8
from .dopri87 import DOPRI87
from .euler import EULER
from .fehlberg2 import FEHLBERG2
from .gauss_legendre import GL4, GL6
from .heun import HEUN
from .heun3 import HEUN3
from .heun_euler import HEUN_EULER
from .implicit_midpoint import IMPLICIT_MIDPOINT
from .kvaerno3 import KVAERNO3
from .kvaerno5 import KVAERNO5
from .midpoint import MIDPOINT
from .radau3 import RADAU3
from .radau5 import RADAU5, RADAU5_FIXED
from .ralston import RALSTON
from .rk4 import RK4
from .rk38 import RK38
from .sdirk2 import SDIRK2
from .trapezoid import TRAPEZOID
from .trbdf2 import TRBDF2
from .tsit5 import TSIT5

_ALL: tuple[ButcherTableau, ...] = (
    EULER,
    MIDPOINT,
    HEUN,
    RALSTON,
    HEUN3,
    RK4,
    RK38,
    HEUN_EULER,
    FEHLBERG2,
    BOSH3,
    CASH_KARP,
    DOPRI5,
    TSIT5,
    DOPRI8,
    DOPRI87,
    BACKWARD_EULER,
    TRAPEZOID,
    IMPLICIT_MIDPOINT,
    SDIRK2,
    TRBDF2,
    KVAERNO3,
    KVAERNO5,
    RADAU3,
    RADAU5,
    RADAU5_FIXED,
    GL4,
    GL6,
)

TABLEAUX: MappingProxyType[str, ButcherTableau] = MappingProxyType({t.name: t for t in _ALL})
"""Read-only mapping from method name to its :class:`ButcherTableau`."""

MULTISTEP: MappingProxyType[str, AdamsMethod] = MappingProxyType(
    {m.name: m for m in (ADAMS_BASHFORTH, ADAMS_BASHFORTH_MOULTON, EXPLICIT_ADAMS, IMPLICIT_ADAMS)}
)
"""Read-only mapping from method name to its :class:`AdamsMethod`."""

AUTO = AutoMethod(
    "auto",
    DOPRI5,
    BDF,
    citation=(
        "dopri5 and bdf, switched by Hairer's stiffness test (Hairer, Norsett & Wanner, Solving ODEs I, IV.2) "
        "and a comparison of stable step sizes (after Petzold's LSODA, SIAM J. Sci. Stat. Comput. 4, 1983)"
    ),
)

VARIABLE_ORDER: MappingProxyType[str, BDFMethod | AutoMethod] = MappingProxyType({BDF.name: BDF, AUTO.name: AUTO})
"""Read-only mapping from name to the methods that choose their order (``bdf``) or their method
(``auto``) as they go."""

METHODS: tuple[str, ...] = (*TABLEAUX, *MULTISTEP, *VARIABLE_ORDER)
"""Every method's own name (:data:`ALIASES` adds other libraries' names for some)."""

ALIASES: MappingProxyType[str, str] = MappingProxyType(
    {
        # torchdiffeq's names for the same tableaux (torchdiffeq/_impl/odeint.py's SOLVERS):
        # its heun2 and adaptive_heun have Heun's coefficients, the latter with Euler embedded;
        # its implicit_euler is the backward Euler method.
        "heun2": "heun",
        "adaptive_heun": "heun_euler",
        "implicit_euler": "backward_euler",
        # Its radauIIA3 is the two-stage Radau IIA method.
        "radauIIA3": "radau3",
        # Its radauIIA5 is Radau IIA of order 5 on fixed steps; our radau5 is
        # Hairer's adaptive code for the same tableau.
        "radauIIA5": "radau5_fixed",
        # 0.2's fixed_adams is its implicit_adams.
        "fixed_adams": "implicit_adams",
    }
)
"""Other names :func:`ode_core.solve` accepts, each for one method of :data:`METHODS`."""

__all__ = ["ALIASES", "METHODS", "MULTISTEP", "TABLEAUX", "VARIABLE_ORDER"]
