"""Tiny causal language models built from a transformers ``LlamaConfig``, by preset or shape.

The shapes (``PRESETS``, ``ModelShape``, ``resolve_shape``) live in ``proxies.config`` (no
torch) and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

from mixtures.errors import DataError
from proxies.config import (
    INIT_CONFIG,
    PRESETS,
    ModelShape,
    ModelSpec,
    PresetName,
    TrainConfig,
    init_weights,
    resolve_shape,
)

_INIT_LOCK = threading.Lock()


def build_model(shape: ModelShape, *, vocab_size: int, seq_len: int, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model of ``shape``; ``seed`` makes the initialisation reproducible."""
    # attn_implementation is one of the keyword arguments PreTrainedConfig.__init__ takes besides
    # the dataclass fields, which are all that transformers' type signature declares.
    config = LlamaConfig(  # type: ignore[call-arg]
        vocab_size=vocab_size,
        hidden_size=shape.d_model,
        intermediate_size=shape.d_ff,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=seq_len,
        tie_word_embeddings=shape.tie_embeddings,
        attn_implementation="sdpa",
    )
    # fork_rng keeps the caller's global torch RNG untouched: no global seeding in libraries.
    # The RNG is still process-wide while forked, so two threads building models at once would
    # interleave draws: the lock makes initialisation depend on ``seed`` alone.
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def count_parameters(model: PreTrainedModel, *, non_embedding: bool = True) -> int:
    """Parameters of ``model``; with ``non_embedding``, less the token embeddings and, when it
    is not tied to them, the output layer."""
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        embeddings = {id(p): p for p in model.get_input_embeddings().parameters()}
        output = model.get_output_embeddings()
        if output is not None:
            embeddings.update((id(p), p) for p in output.parameters())
        total -= sum(p.numel() for p in embeddings.values())
    return int(total)


__all__ = [
    "PRESETS",
    "ModelShape",
    "ModelSpec",
    "PresetName",
    "build_model",
    "count_parameters",
    "resolve_shape",
]


#: ``LlamaConfig`` fields of an ``init_from`` folder and the ``ModelShape`` field each must equal.
INIT_SHAPE_FIELDS = {
    "hidden_size": "d_model",
    "num_hidden_layers": "n_layers",
    "num_attention_heads": "n_heads",
    "intermediate_size": "d_ff",
    "num_key_value_heads": "kv_heads",
    "tie_word_embeddings": "tie_embeddings",
}


def check_init_folder(
    folder: str | Path,
    *,
    shape: ModelShape,
    vocab_size: int,
    tokenizer_sha256: str | None = None,
) -> None:
    """That the model saved in ``folder`` is one a run of ``shape`` on a corpus of
    ``vocab_size`` ids (and, when both are known, of the tokenizer with ``tokenizer_sha256``)
    can start from: a DataError naming the folder and every field that differs otherwise."""
    path = Path(folder)
    init_weights(path)
    config_file = path / INIT_CONFIG
    try:
        saved = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"init_from {path} has no {INIT_CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"init_from {config_file} is not valid JSON: {err}") from None
    if not isinstance(saved, dict) or saved.get("model_type") != "llama":
        got = saved.get("model_type") if isinstance(saved, dict) else type(saved).__name__
        raise DataError(f"init_from {path} holds a {got!r} model; mixopt trains Llama models")
    want = {**shape.model_dump(), "kv_heads": shape.kv_heads}
    diffs = [
        f"{field} {saved.get(key)} (the run's {want[field]})"
        for key, field in INIT_SHAPE_FIELDS.items()
        if saved.get(key, want[field] if key == "num_key_value_heads" else None) != want[field]
    ]
    if diffs:
        raise DataError(f"init_from {path} has another shape: {', '.join(diffs)}")
    if saved.get("vocab_size") != vocab_size:
        raise DataError(
            f"init_from {path} has a vocabulary of {saved.get('vocab_size')} ids, the corpus "
            f"{vocab_size}: the model was trained with another tokenizer"
        )
    tokenizer = path / "tokenizer.json"
    if (
        tokenizer_sha256 is not None
        and tokenizer.is_file()
        and hashlib.sha256(tokenizer.read_bytes()).hexdigest() != tokenizer_sha256
    ):
        raise DataError(
            f"init_from {path} was saved with another tokenizer than the corpus's "
            f"({tokenizer} differs): its token ids mean other text"
        )


def initial_model(cfg: TrainConfig, *, vocab_size: int, seed: int) -> LlamaForCausalLM:
    """The model a run of ``cfg`` starts from: ``cfg.init_from``'s weights (checked by
    ``check_init_folder``) or a fresh initialisation with ``seed``."""
    if cfg.init_from is None:
        return build_model(cfg.shape, vocab_size=vocab_size, seq_len=cfg.seq_len, seed=seed)
    check_init_folder(cfg.init_from, shape=cfg.shape, vocab_size=vocab_size)
    model = LlamaForCausalLM.from_pretrained(
        cfg.init_from, torch_dtype=torch.float32, attn_implementation="sdpa"
    )
    return model
