"""birthlens.load: dispatch on the spec, local Hugging Face folders, and one-line errors on bad input."""

import json
import time

import pytest
import torch

import birthlens
from birthlens.errors import BirthlensError
from birthlens.models import loading
from birthlens.models.pretrained import load_gguf


def one_line_error(spec, **kwargs) -> str:
    with pytest.raises(BirthlensError) as info:
        birthlens.load(spec, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --- bad input -------------------------------------------------------------------------------


def test_unknown_spec_lists_the_kinds_of_spec():
    message = one_line_error("definitely-not-a-model")
    assert "unknown model spec" in message
    for kind in ("smollm2-135m", ".gguf", "checkpoint", "Hugging Face", "TransformerLens"):
        assert kind in message


@pytest.mark.parametrize("spec", ["missing/model.gguf", "runs/none@400", "./nothing-here", "ckpt.safetensors"])
def test_missing_paths(spec):
    message = one_line_error(spec)
    assert "no such file" in message or "not a training run" in message


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 this is a zip, not a gguf")
    assert "not a GGUF file" in one_line_error(str(path))


def test_truncated_gguf_is_refused_and_leaves_no_cache_entry(tmp_path):
    from birthlens.models.smollm2 import smollm2_gguf

    truncated = tmp_path / "truncated.gguf"
    with open(smollm2_gguf(), "rb") as source:
        truncated.write_bytes(source.read(1_000_000))
    with pytest.raises(BirthlensError, match="truncated or corrupt") as info:
        load_gguf(truncated, cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache" / "converted").exists() or not any((tmp_path / "cache" / "converted").iterdir())


def test_gguf_of_an_unsupported_architecture(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "other.gguf"
    writer = gguf.GGUFWriter(str(path), arch="rwkv9")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert "rwkv9 is not supported" in one_line_error(str(path))


def test_unsupported_architecture(tmp_path):
    from transformers import MambaConfig

    MambaConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1).save_pretrained(tmp_path)
    message = one_line_error(str(tmp_path))
    assert "MambaForCausalLM" in message and "TransformerLens" in message


def test_hf_folder_without_weights(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=16).save_pretrained(tmp_path)
    assert "cannot load the model" in one_line_error(str(tmp_path))


def test_folder_that_is_no_model(tmp_path):
    assert "neither a training run" in one_line_error(str(tmp_path))


def test_bad_dtype_and_device():
    assert "unknown dtype" in one_line_error("smollm2-135m", dtype="float8")
    assert "unknown device" in one_line_error("smollm2-135m", device="gpu-please")
    if not torch.cuda.is_available():
        assert "CUDA is not available" in one_line_error("smollm2-135m", device="cuda")


def test_transformerlens_name_offline_gives_a_clear_error(monkeypatch, tmp_path):
    from huggingface_hub import constants

    # Offline and with an empty Hugging Face cache, whatever the network is doing.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    before = constants.HF_HUB_OFFLINE
    start = time.perf_counter()
    message = one_line_error("gpt2")
    assert "hub is unreachable" in message and "smollm2-135m" in message
    assert time.perf_counter() - start < 10
    assert constants.HF_HUB_OFFLINE == before  # restored, not left switched on


# --- local Hugging Face folders ------------------------------------------------------------


def tiny_hf_models():
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig

    return {
        "gpt2": GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=50, n_positions=32),
        "neox": GPTNeoXConfig(
            num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
            vocab_size=50, max_position_embeddings=32,
        ),
        "llama-gqa": LlamaConfig(
            num_hidden_layers=2, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=64, vocab_size=50, max_position_embeddings=32,
        ),
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["gpt2", "neox", "llama-gqa"])
def test_hf_folder_matches_hugging_face(tmp_path, kind):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    hf_model = AutoModelForCausalLM.from_config(tiny_hf_models()[kind]).eval()
    folder = tmp_path / f"tiny-{kind}"  # "llama" in the path must not confuse TransformerLens
    hf_model.save_pretrained(folder)
    model = birthlens.load(str(folder))
    assert model.tokenizer is None
    tokens = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(tokens).log_softmax(-1)
        theirs = hf_model(tokens).logits.log_softmax(-1)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_dtype_passes_through(tmp_path):
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_config(tiny_hf_models()["gpt2"]).save_pretrained(tmp_path)
    model = birthlens.load(str(tmp_path), dtype="bfloat16")
    assert model.cfg.dtype == torch.bfloat16 and model.W_E.dtype == torch.bfloat16


# --- dispatch --------------------------------------------------------------------------------


def make_run(folder):
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"task": {"k": 5}, "model": {"variant": "simplified"}}))
    return folder


@pytest.fixture
def fake_checkpoints(monkeypatch):
    """Record the calls the toy branch makes, without training anything."""
    checkpoints = pytest.importorskip("birthlens.models.checkpoints")
    calls = []

    def find_checkpoint(run_dir, step=None):
        calls.append(("find", run_dir, step))
        return run_dir / "checkpoints" / "chosen.safetensors"

    def load_checkpoint_model(path, device="cpu"):
        calls.append(("load", path, device))
        return "toy-model"

    monkeypatch.setattr(checkpoints, "find_checkpoint", find_checkpoint)
    monkeypatch.setattr(checkpoints, "load_checkpoint_model", load_checkpoint_model)
    return calls


def test_run_folder_with_and_without_step(tmp_path, fake_checkpoints):
    run = make_run(tmp_path / "quick")
    assert birthlens.load(str(run)) == "toy-model"
    assert birthlens.load(f"{run}@400") == "toy-model"
    finds = [call for call in fake_checkpoints if call[0] == "find"]
    assert finds == [("find", run, None), ("find", run, 400)]


def test_checkpoint_file_goes_to_the_toy_loader(tmp_path, fake_checkpoints):
    path = tmp_path / "step_00000400.safetensors"
    path.write_bytes(b"")
    assert birthlens.load(str(path)) == "toy-model"
    assert fake_checkpoints == [("load", path, torch.device("cpu"))]


def test_step_on_a_folder_that_is_no_run(tmp_path):
    assert "not a training run" in one_line_error(f"{tmp_path}@400")


def test_hf_folder_with_a_checkpoints_subfolder_is_still_hf(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    assert not loading.is_run_folder(tmp_path)
    assert loading.is_run_folder(make_run(tmp_path / "run"))


def test_transformerlens_names_are_recognised():
    from birthlens.models.pretrained import is_tl_name

    assert is_tl_name("gpt2") and is_tl_name("attn-only-2l") and is_tl_name("EleutherAI/pythia-70m")
    assert not is_tl_name("smollm2-135m-typo")
