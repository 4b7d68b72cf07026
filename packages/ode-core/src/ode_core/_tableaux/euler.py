"""Forward (explicit) Euler: the first-order method of Euler (1768)."""

from __future__ import annotations

from .._tableau import ButcherTableau

EULER = ButcherTableau(
    name="euler",
    order=1,
    c=(0,),
    a=((),),
    b=(1,),
    citation="L. Euler, Institutiones calculi integralis (1768); Hairer, Norsett & Wanner, Solving ODEs I, II.1.",
)
