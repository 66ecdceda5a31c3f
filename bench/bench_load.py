"""Load time of SmolLM2: first load (dequantise + convert, empty cache) vs second load (cached).

    .venv/bin/python bench/bench_load.py

Both loads run in a fresh, temporary cache folder; the GGUF is fetched (or reused from the
user's cache) beforehand so the first load times the conversion, not the download. A
third line times a cached load in a new process, imports included, as a user sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from birthlens.models.smollm2 import GGUF_NAME, load_smollm2, smollm2_gguf

FRESH_PROCESS = "import time; t = time.perf_counter(); import birthlens; birthlens.load('smollm2-135m'); print(time.perf_counter() - t)"


def main() -> int:
    source = smollm2_gguf()  # fetched once into the user's cache, outside the timings
    with tempfile.TemporaryDirectory(prefix="birthlens-bench-") as scratch:
        cache = Path(scratch)
        (cache / "smollm2").mkdir()
        shutil.copyfile(source, cache / "smollm2" / GGUF_NAME)

        start = time.perf_counter()
        load_smollm2(cache_dir=cache)
        first = time.perf_counter() - start

        start = time.perf_counter()
        load_smollm2(cache_dir=cache)
        second = time.perf_counter() - start

        env = {**os.environ, "BIRTHLENS_CACHE": str(cache)}
        result = subprocess.run([sys.executable, "-c", FRESH_PROCESS], env=env, capture_output=True, text=True, check=True)
        fresh = float(result.stdout.strip().splitlines()[-1])

    print(f"smollm2-135m first load (convert, no cache): {first:6.1f} s")
    print(f"smollm2-135m second load (cached):           {second:6.1f} s")
    print(f"smollm2-135m cached load, new process:       {fresh:6.1f} s (imports included)")
    print(f"first / second: {first / second:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
