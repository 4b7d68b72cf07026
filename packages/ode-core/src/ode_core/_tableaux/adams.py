"""Adams methods of order 4: Adams--Bashforth and the Adams--Bashforth--Moulton predictor-corrector."""

from __future__ import annotations

from .._adams import AdamsMethod
from .rk38 import RK38

_CITATION = (
    "J. C. Adams (in F. Bashforth, An attempt to test the theories of capillary action, 1883); F. R. Moulton, "
    "New methods in exterior ballistics, 1926; Hairer, Norsett & Wanner, Solving ODEs I, III.1."
)

# Four steps, started by the 3/8 rule as torchdiffeq's explicit_adams and
# implicit_adams start theirs (with rk4_alt_step_func, that rule).
ADAMS_BASHFORTH = AdamsMethod(name="adams_bashforth", steps=4, corrector=False, starter=RK38, citation=_CITATION)
ADAMS_BASHFORTH_MOULTON = AdamsMethod(
    name="adams_bashforth_moulton", steps=4, corrector=True, starter=RK38, citation=_CITATION
)
