"""Model presets and the training configuration: pure data, no torch.

Kept apart from ``proxies.model`` and ``proxies.train`` so that loading and validating a config
(``configs.schema``) does not import torch and transformers, several seconds on a small machine.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mixtures.errors import ConfigError


class ModelShape(BaseModel):
    """Shape of a Llama-style decoder; the vocabulary comes from the corpus tokenizer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(gt=0, description="hidden size")
    n_layers: int = Field(gt=0, description="decoder layers")
    n_heads: int = Field(gt=0, description="attention heads (d_model must divide by it)")
    d_ff: int = Field(gt=0, description="MLP inner size")


#: Named sizes. Non-embedding parameters: 12 * d^2 * layers roughly (SwiGLU MLP of d_ff = 4d
#: is 3 * d * d_ff). At these sizes the output layer dominates the compute, so presets grow
#: depth and width together with the target run's several-times-larger budget.
PRESETS: dict[str, ModelShape] = {
    "nano": ModelShape(d_model=32, n_layers=1, n_heads=2, d_ff=64),
    "micro": ModelShape(d_model=64, n_layers=2, n_heads=2, d_ff=192),
    "tiny": ModelShape(d_model=96, n_layers=3, n_heads=3, d_ff=256),
    "small": ModelShape(d_model=128, n_layers=4, n_heads=4, d_ff=384),
    "base": ModelShape(d_model=256, n_layers=5, n_heads=4, d_ff=768),
}

PresetName = Literal["nano", "micro", "tiny", "small", "base"]


def resolve_shape(preset: str) -> ModelShape:
    """The shape of a named preset; ConfigError for an unknown name or an invalid shape."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown model preset {preset!r}; known: {sorted(PRESETS)}")
    shape = PRESETS[preset]
    if shape.d_model % shape.n_heads:
        raise ConfigError(f"preset {preset!r}: d_model {shape.d_model} not divisible by heads")
    return shape


class TrainConfig(BaseModel):
    """How one model is trained and evaluated. Every field is part of a run's content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: PresetName = Field("micro", description="model size preset (proxies.model.PRESETS)")
    seq_len: int = Field(128, ge=8, description="tokens per training sequence")
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step")
    train_tokens: int = Field(300_000, ge=1, description="token budget of the run")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW)")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="linear warm-up share of steps")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine decay floor, x peak lr")
    weight_decay: float = Field(0.1, ge=0, description="AdamW decay on matrices only")
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm; null = off")
    eval_tokens: int = Field(16_384, ge=64, description="fixed validation tokens per domain")
    eval_layout: Literal["spread", "head"] = Field(
        "spread",
        description="validation windows evenly spread over the split, or its first eval_tokens",
    )
    eval_batch_size: int = Field(32, ge=1, description="sequences per evaluation batch")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda if present")
    divergence_ratio: float = Field(
        1.5,
        gt=1,
        description="a loss above this x ln(vocab) (the loss of a uniform guess) diverged",
    )

    @property
    def steps(self) -> int:
        """Optimizer steps the token budget buys (at least one)."""
        return max(1, self.train_tokens // (self.batch_size * self.seq_len))


class EvaluatorRef(BaseModel):
    """A custom evaluator of a run (``proxies.evaluators``): the function's reference, its
    keyword params and the domains it is given (empty: every evaluated domain). Part of the run's
    content hash when set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: str = Field(description="'package.module:function'")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments")
    domains: tuple[str, ...] = Field((), description="domains passed as `domains`")
