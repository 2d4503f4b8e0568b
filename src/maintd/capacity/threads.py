"""One BLAS thread for the models' small matrices.

OpenBLAS starts a thread per core for every call; on our 12-by-12 problems the threads only
spin and wait on each other, and on a busy two-core machine a Holt-Winters fit took four times
as long as with one thread (docs/benchmarks.md, ``capacity``). The variables are read when
numpy is first imported, so this must run before it; a value the operator set is kept.
"""

from __future__ import annotations

import os
import sys

VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_blas_thread() -> bool:
    """Ask for one BLAS thread; False when numpy is already loaded (too late to ask)."""
    if "numpy" in sys.modules:
        return False
    for name in VARIABLES:
        os.environ.setdefault(name, "1")
    return True
