"""Model shapes, their presets and the training configuration: pure data, no torch.

Kept apart from ``proxies.model`` and ``proxies.train`` so that loading and validating a config
(``configs.schema``) does not import torch and transformers, several seconds on a small machine.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from mixtures.errors import ConfigError, DataError


class ModelShape(BaseModel):
    """Shape of a Llama-style decoder; the vocabulary comes from the corpus tokenizer.

    YAML: ``model: {d_model: 256, n_layers: 8, n_heads: 8, n_kv_heads: 4, d_ff: 1024}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(gt=0, description="hidden size")
    n_layers: int = Field(gt=0, description="decoder layers")
    n_heads: int = Field(gt=0, description="attention (query) heads; d_model must divide by it")
    d_ff: int = Field(gt=0, description="MLP inner size")
    n_kv_heads: int | None = Field(
        None,
        gt=0,
        description="key/value heads (grouped-query attention); n_heads must divide by it; "
        "null = n_heads (plain multi-head attention)",
    )
    tie_embeddings: bool = Field(
        True, description="the output layer shares the token embedding matrix"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelShape:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            # rotary position embeddings rotate pairs of a head's dimensions
            raise ValueError(
                f"head size d_model / n_heads = {self.d_model // self.n_heads} must be even"
            )
        if self.n_heads % self.kv_heads:
            raise ValueError(
                f"n_heads {self.n_heads} must be divisible by n_kv_heads {self.kv_heads}"
            )
        return self

    @property
    def kv_heads(self) -> int:
        """Key/value heads in effect: ``n_kv_heads``, or ``n_heads`` when it is not set."""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads


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


def _model_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "preset"
    if isinstance(value, dict | ModelShape):
        return "shape"
    return None


#: ``train.model``: a preset name or an explicit shape. The discriminator validates a value
#: against one branch only, so a bad value is one error naming that branch, not one per branch.
ModelSpec = Annotated[
    Annotated[PresetName, Tag("preset")] | Annotated[ModelShape, Tag("shape")],
    Discriminator(
        _model_kind,
        custom_error_type="model_spec",
        custom_error_message="expected a preset name or a mapping of the model's shape",
    ),
]


def resolve_shape(model: str | ModelShape) -> ModelShape:
    """The full shape of a preset name or an explicit shape, every field set (``n_kv_heads``
    filled in): two specs of the same model resolve to equal shapes. ConfigError for an unknown
    preset name."""
    if isinstance(model, str):
        if model not in PRESETS:
            raise ConfigError(f"unknown model preset {model!r}; known: {sorted(PRESETS)}")
        model = PRESETS[model]
    return model.model_copy(update={"n_kv_heads": model.kv_heads})


#: ``TrainConfig`` fields that a run id leaves out at these values: added after runs were
#: recorded, a config at the value has the id it had before the field existed.
OMITTED_AT: dict[str, Any] = {
    "micro_batch_size": None,
    "final_loss_ratio": 1.0,
    "precision": "auto",
    "init_from": None,
}
#: Files of an ``init_from`` folder (``save_pretrained``'s): the config and the weights, the
#: first weights file found in this order.
INIT_CONFIG = "config.json"
INIT_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
#: ``TrainConfig`` fields that say how runs are executed, not what they compute: never in a run
#: id. A packed or compiled run computes its solo run's losses up to float rounding, as the same
#: run on another machine does.
OPERATIONAL: frozenset[str] = frozenset({"pack", "compile"})


def hashed_train(train: TrainConfig) -> dict[str, Any]:
    """What a run id hashes of its training config: ``omit_defaults`` of its JSON, ``model`` as
    its resolved shape, and ``init_from`` as the content hash of its weights
    (``init_fingerprint``), so that a moved folder names the same runs and new weights at the
    same path name new ones."""
    data = omit_defaults(train.model_dump(mode="json"))
    data["model"] = train.shape.model_dump(mode="json")
    if train.init_from is not None:
        data["init_from"] = init_fingerprint(train.init_from)
    return data


def init_weights(folder: str | Path) -> Path:
    """The weights file of an ``init_from`` folder; DataError naming the folder when it is not
    a folder or holds no weights."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"init_from {path} is not a folder (a model saved with save_pretrained)")
    for name in INIT_WEIGHTS:
        if (path / name).is_file():
            return path / name
    raise DataError(f"init_from {path} has no weights file ({' or '.join(INIT_WEIGHTS)})")


def init_fingerprint(folder: str | Path) -> str:
    """The first 16 hex digits of the sha256 of an ``init_from`` folder's weights file, read
    once per process and file version (path, size, modification time)."""
    weights = init_weights(folder).resolve()
    stat = weights.stat()
    return _file_digest(str(weights), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def omit_defaults(train: dict[str, Any]) -> dict[str, Any]:
    """A dumped ``TrainConfig`` without its operational fields and without the fields at their
    ``OMITTED_AT`` value."""
    return {
        k: v
        for k, v in train.items()
        if k not in OPERATIONAL and (k not in OMITTED_AT or v != OMITTED_AT[k])
    }


class TrainConfig(BaseModel):
    """How one model is trained and evaluated. Every field is part of a run's content hash,
    ``model`` by its resolved shape (``proxies.runs.RunSpec.run_id``). Numbers are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    model: ModelSpec = Field(
        "micro",
        description="a size preset (proxies.config.PRESETS) or an explicit shape (ModelShape)",
    )
    seq_len: int = Field(128, ge=8, description="tokens per training sequence")
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step")
    micro_batch_size: int | None = Field(
        None,
        ge=1,
        description="sequences per forward/backward pass: gradients of batch_size / "
        "micro_batch_size passes are accumulated into one optimizer step, to fit a large batch "
        "in device memory; also caps eval_batch_size; null = batch_size (no accumulation)",
    )
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
    eval_batch_size: int = Field(
        32, ge=1, description="sequences per evaluation batch (at most micro_batch_size)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda if present")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16: matmuls under bf16 autocast (norms, softmax and the loss stay fp32); "
        "auto = bf16 on CUDA, fp32 on CPU (see BENCHMARKS.md for the measured speed and rank "
        "agreement)",
    )
    pack: int | Literal["auto"] = Field(
        1,
        description="proxies trained at once in one process as one stacked model (same run "
        "ids and results up to float rounding); auto = the size measured fastest for the "
        "model and device (proxies.pack.auto_pack_size); 1 = one model at a time",
    )
    compile: bool = Field(
        False, description="torch.compile the training step (compiles once per process and shape)"
    )
    divergence_ratio: float = Field(
        1.5,
        gt=1,
        description="a training loss above this x ln(vocab) (the loss of a uniform guess) "
        "during training: the run diverged and stops",
    )
    init_from: str | None = Field(
        None,
        description="a model folder (save_pretrained: config.json and model.safetensors) every "
        "run starts from instead of a fresh initialisation: a checkpoint of yours or one mixopt "
        "trained; its shape must be `model`'s and its vocabulary the corpus's. Runs are named "
        "by the weights' content, not the path. null = from scratch",
    )
    final_loss_ratio: float = Field(
        1.0,
        gt=0,
        description="a run whose final validation loss on its training domains (their "
        "mixture-weighted mean) is above this x ln(vocab), the loss of a uniform guess, learned "
        "nothing usable: it counts as diverged and is left out of the fit",
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if isinstance(self.pack, int) and self.pack < 1:
            raise ValueError(f"pack must be >= 1 or 'auto', got {self.pack}")
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} must be divisible by micro_batch_size "
                f"{self.micro_batch_size}"
            )
        return self

    @property
    def shape(self) -> ModelShape:
        """The resolved shape of ``model`` (``resolve_shape``)."""
        return resolve_shape(self.model)

    @property
    def micro_batches(self) -> int:
        """Forward/backward passes per optimizer step (1 without accumulation)."""
        return 1 if self.micro_batch_size is None else self.batch_size // self.micro_batch_size

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
