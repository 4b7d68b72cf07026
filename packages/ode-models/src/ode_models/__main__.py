"""``python -m ode_models``: the ``ode-models`` command line."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
