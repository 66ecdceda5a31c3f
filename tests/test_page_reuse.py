"""keep_freed_memory: repeated large allocations stop faulting in fresh pages (glibc)."""

import subprocess
import sys

import pytest

# 20 times: holds four 24 MiB tensors at once (like a block's activations), then frees
# them; prints the page faults it took.
CHURN = """
import resource, sys, torch
from birthlens.probes.page_reuse import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()
def churn():
    tensors = [torch.ones(6 * 2**20) for _ in range(4)]
    del tensors
churn()  # warm-up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_pages_are_reused():
    # 20 x 96 MiB is 491,520 fresh 4 KiB pages when the freed memory goes back to the kernel.
    plain, kept = page_faults("plain"), page_faults("keep")
    assert plain > 100_000, plain
    assert kept < plain / 20, (kept, plain)
