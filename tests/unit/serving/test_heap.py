"""`tuning.keep_heap`: NumPy temporaries of a batch reuse heap memory instead of page-faulting
fresh pages from the kernel on every request."""

from __future__ import annotations

import subprocess
import sys

import pytest

# 200 times, three 1 MB arrays at once, then freed (a batch's temporaries are 0.1-1 MB):
# with glibc's defaults the freed top of the heap exceeds the trim threshold and goes back
# to the kernel, so every round faults its pages in again; kept in the heap, none.
PROGRAM = """
import resource, sys
import numpy as np
from serving.tuning import keep_heap
tuned = sys.argv[1] == "tuned"
if tuned and not keep_heap():
    print("unsupported"); sys.exit()
def rounds(n):
    for _ in range(n):
        arrays = [np.ones(1 << 17) for _ in range(3)]  # 1 MB each
        sum(a.sum() for a in arrays)
rounds(2)  # warm up NumPy and the heap
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(200)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_kept_heap_serves_large_temporaries_without_page_faults() -> None:
    tuned = _faults("tuned")
    if tuned == "unsupported":
        pytest.skip("no glibc mallopt here")
    assert int(tuned) < 100, f"{tuned} page faults with the heap kept"
    assert int(_faults("default")) > 10_000  # the defaults fault: the test measures something
