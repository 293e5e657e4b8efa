"""Tiny causal language models built from a transformers ``LlamaConfig``, by named preset."""

from __future__ import annotations

import threading
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import LlamaConfig, LlamaForCausalLM

from mixtures.errors import ConfigError


class ModelShape(BaseModel):
    """Shape of a Llama-style decoder; the vocabulary comes from the corpus tokenizer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(gt=0, description="hidden size")
    n_layers: int = Field(gt=0, description="decoder layers")
    n_heads: int = Field(gt=0, description="attention heads (d_model must divide by it)")
    d_ff: int = Field(gt=0, description="MLP inner size")


#: Named sizes. Non-embedding parameters: 12 * d^2 * layers roughly (SwiGLU MLP of d_ff = 4d
#: is 3 * d * d_ff). At these sizes the output layer dominates the compute (corpus-notes.md), so
#: presets grow depth and width together with the target run's several-times-larger budget.
PRESETS: dict[str, ModelShape] = {
    "nano": ModelShape(d_model=32, n_layers=1, n_heads=2, d_ff=64),
    "micro": ModelShape(d_model=64, n_layers=2, n_heads=2, d_ff=192),
    "tiny": ModelShape(d_model=96, n_layers=3, n_heads=3, d_ff=256),
    "small": ModelShape(d_model=128, n_layers=4, n_heads=4, d_ff=384),
    "base": ModelShape(d_model=256, n_layers=5, n_heads=4, d_ff=768),
}

_INIT_LOCK = threading.Lock()

PresetName = Literal["nano", "micro", "tiny", "small", "base"]


def resolve_shape(preset: str) -> ModelShape:
    if preset not in PRESETS:
        raise ConfigError(f"unknown model preset {preset!r}; known: {sorted(PRESETS)}")
    shape = PRESETS[preset]
    if shape.d_model % shape.n_heads:
        raise ConfigError(f"preset {preset!r}: d_model {shape.d_model} not divisible by heads")
    return shape


def build_model(shape: ModelShape, *, vocab_size: int, seq_len: int, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model; ``seed`` makes the initialisation reproducible."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=shape.d_model,
        intermediate_size=shape.d_ff,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_heads,
        max_position_embeddings=seq_len,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    # fork_rng keeps the caller's global torch RNG untouched: no global seeding in libraries.
    # The RNG is still process-wide while forked, so two threads building models at once would
    # interleave draws: the lock makes initialisation depend on ``seed`` alone.
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def count_parameters(model: torch.nn.Module, *, non_embedding: bool = True) -> int:
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= model.get_input_embeddings().weight.numel()
    return int(total)
