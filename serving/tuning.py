"""How each worker process sets itself up for scoring, once, in the lifespan: one OpenMP
thread, a heap that keeps a batch's temporaries, a garbage collector kept off the request
path. (A dead worker's metrics are dropped by gunicorn's `child_exit` hook,
serving/gunicorn_app.py.)"""

from __future__ import annotations

import ctypes
import gc
import logging
import warnings

log = logging.getLogger(__name__)

# glibc's malloc: requests above the mmap threshold get fresh pages from the kernel, and free
# memory at the top of the heap beyond the trim threshold goes back to it. A batch of 1,000
# rows allocates and frees NumPy temporaries of 0.1-1 MB, so with the defaults every request
# paid ~650 page faults (kernel time: up to a fifth of a worker's CPU). Kept in the heap,
# they cost nothing; a worker holds on to at most TRIM_THRESHOLD of freed memory.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's maximum on 64-bit systems
TRIM_THRESHOLD = 128 << 20


def prepare_worker() -> None:
    """All of the above, for this process."""
    one_thread()
    keep_heap()


def keep_heap() -> bool:
    """Tune glibc's malloc as above; False where there is no mallopt (musl, macOS)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def one_thread() -> None:
    """Parallel scoring of one row only adds overhead; workers are the parallelism.

    threadpoolctl only limits libraries already loaded, so load scikit-learn's OpenMP
    runtime first. (`python -m serving` also sets OMP_NUM_THREADS=1 before any import.)
    """
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    # Models are fitted on named columns; the service passes the same columns as an array.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")


def freeze_heap() -> None:
    """Call once everything long-lived is loaded (libraries, the model).

    Frozen objects stay out of the collector's full passes, which a batch's records would
    otherwise trigger over and over (each walks every object of the process). A request
    allocates a few hundred objects and frees nearly all of them itself; the default
    thresholds (700, 10, 10) still ran a collection every few requests, and older generations
    often enough to show in the tail (p99 at 8 connections: 7.4-11.5 ms with them, 6.0-8.4 ms
    with these, one run each). Cycles are still collected.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
