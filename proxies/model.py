"""Tiny causal language models built from a transformers ``LlamaConfig``, by preset or shape.

The shapes (``PRESETS``, ``ModelShape``, ``resolve_shape``) live in ``proxies.config`` (no
torch) and are re-exported here.
"""

from __future__ import annotations

import threading

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

from proxies.config import PRESETS, ModelShape, ModelSpec, PresetName, resolve_shape

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
