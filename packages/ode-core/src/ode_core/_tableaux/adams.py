"""Adams methods: ours of fixed order, and torchdiffeq's, whose order rises with the history."""

from __future__ import annotations

from .._adams import AdamsMethod
from .rk38 import RK38

_CITATION = (
    "J. C. Adams (in F. Bashforth, An attempt to test the theories of capillary action, 1883); F. R. Moulton, "
    "New methods in exterior ballistics, 1926; Hairer, Norsett & Wanner, Solving ODEs I, III.1."
)

# Four slopes from the first Adams step on, started by the 3/8 rule: order 4,
# and 5 with the corrector (Adams-Moulton through the same four slopes and the
# new point).
ADAMS_BASHFORTH = AdamsMethod(name="adams_bashforth", steps=4, corrector=False, starter=RK38, citation=_CITATION)
ADAMS_BASHFORTH_MOULTON = AdamsMethod(
    name="adams_bashforth_moulton", steps=4, corrector=True, starter=RK38, citation=_CITATION
)

# torchdiffeq's (torchdiffeq/_impl/fixed_adams.py, max_order=12): two steps of
# the 3/8 rule, then Adams-Bashforth on every slope kept, 3 rising to 11; the
# implicit one corrects up to 4 times with Adams-Moulton on one more node,
# testing each correction on the step's increment in the max norm.
_TORCHDIFFEQ = _CITATION + " The variable-order start and the correction test are torchdiffeq's (fixed_adams.py)."
EXPLICIT_ADAMS = AdamsMethod(
    name="explicit_adams", steps=11, min_steps=3, corrector=False, starter=RK38, citation=_TORCHDIFFEQ
)
IMPLICIT_ADAMS = AdamsMethod(
    name="implicit_adams",
    steps=11,
    min_steps=3,
    corrector=True,
    starter=RK38,
    max_corrections=4,
    correction_test="increment",
    citation=_TORCHDIFFEQ,
)
