"""The asv benchmark suite of the neural-ODE toolkit, and the helpers the standalone scripts share.

asv imports this package (``benchmark_dir`` in ``../asv.conf.json``) and
every module in it; the benchmarks live in ``solvers``, ``stiff``,
``gradients``, ``models`` and ``peers``. The private modules are shared
with the standalone scripts one folder up (``python
benchmarks/bench_*.py``), which import them as ``benchmarks._common`` etc.:
``_common`` (timing, machine description, tables, memory probes),
``_problems`` (the NumPy test problems and their references) and
``_fields`` (the torch vector fields).

Importing the package pins BLAS and OpenMP to one thread, so it must come
before NumPy or torch is imported: every side of a comparison then runs on
one core, which is what a 2-core machine shared with other jobs can give
reliably.
"""

from __future__ import annotations

from ._common import pin_threads

pin_threads()
