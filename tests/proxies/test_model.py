import pytest
import torch
import yaml
from pydantic import ValidationError

from mixtures.errors import ConfigError
from proxies.config import PRESETS, ModelShape, TrainConfig, resolve_shape
from proxies.model import build_model, count_parameters


def test_model_is_a_preset_name_or_an_explicit_shape_from_yaml():
    named = TrainConfig.model_validate(yaml.safe_load("model: micro"))
    assert named.model == "micro" and named.shape == resolve_shape("micro")
    explicit = TrainConfig.model_validate(
        yaml.safe_load(
            "model: {d_model: 256, n_layers: 8, n_heads: 8, n_kv_heads: 4, d_ff: 1024, "
            "tie_embeddings: false}"
        )
    )
    assert explicit.shape == ModelShape(
        d_model=256, n_layers=8, n_heads=8, n_kv_heads=4, d_ff=1024, tie_embeddings=False
    )
    # round trip through the JSON a run spec is stored as
    assert TrainConfig.model_validate_json(explicit.model_dump_json()) == explicit
    assert TrainConfig.model_validate_json(named.model_dump_json()) == named


def test_resolved_shape_sets_every_field():
    shape = resolve_shape(ModelShape(d_model=64, n_layers=2, n_heads=4, d_ff=128))
    assert shape.n_kv_heads == 4 and shape.tie_embeddings
    assert resolve_shape("nano").n_kv_heads == PRESETS["nano"].n_heads
    with pytest.raises(ConfigError, match="unknown model preset 'huge'"):
        resolve_shape("huge")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"d_model": 100, "n_heads": 8}, "d_model 100 must be divisible by n_heads 8"),
        ({"d_model": 24, "n_heads": 8}, "head size d_model / n_heads = 3 must be even"),
        ({"n_heads": 8, "n_kv_heads": 3}, "n_heads 8 must be divisible by n_kv_heads 3"),
        ({"n_layers": 0}, "n_layers\n  Input should be greater than 0"),
        ({"d_ff": -1}, "d_ff\n  Input should be greater than 0"),
        ({"n_kv_heads": 0}, "n_kv_heads\n  Input should be greater than 0"),
        ({"width": 3}, "width\n  Extra inputs are not permitted"),
    ],
)
def test_invalid_shapes_are_named(fields, message):
    base = {"d_model": 64, "n_layers": 2, "n_heads": 8, "d_ff": 128}
    with pytest.raises(ValidationError, match=message):
        TrainConfig(model={**base, **fields})


def test_a_bad_model_is_one_error_naming_the_field():
    for value in ["huge", 3]:
        with pytest.raises(ValidationError) as info:
            TrainConfig.model_validate({"model": value})
        assert info.value.error_count() == 1
        assert info.value.errors()[0]["loc"][0] == "model"


def test_build_model_honours_every_field():
    shape = ModelShape(d_model=64, n_layers=3, n_heads=8, n_kv_heads=2, d_ff=96)
    untied = shape.model_copy(update={"tie_embeddings": False})
    model = build_model(shape, vocab_size=100, seq_len=16, seed=0)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) == (64, 3, 96)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (8, 2)
    layer = model.model.layers[0]
    head_dim = 64 // 8
    assert layer.self_attn.q_proj.weight.shape == (8 * head_dim, 64)
    assert layer.self_attn.k_proj.weight.shape == (2 * head_dim, 64)  # grouped-query attention
    assert layer.mlp.up_proj.weight.shape == (96, 64)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    separate = build_model(untied, vocab_size=100, seq_len=16, seed=0)
    assert separate.lm_head.weight is not separate.model.embed_tokens.weight
    total = sum(p.numel() for p in separate.parameters())
    assert total == sum(p.numel() for p in model.parameters()) + 100 * 64
    # the untied output layer is an embedding too: both count the same non-embedding parameters
    assert count_parameters(separate) == count_parameters(model)
    logits = separate(input_ids=torch.zeros((2, 5), dtype=torch.long)).logits
    assert logits.shape == (2, 5, 100)


def test_default_shapes_build_the_models_they_always_have():
    """Presets leave n_kv_heads and tie_embeddings at their defaults: they build plain
    multi-head attention and tied embeddings, as the parameter counts of PRESETS assume."""
    model = build_model(PRESETS["micro"], vocab_size=300, seq_len=16, seed=0)
    assert model.config.num_key_value_heads == model.config.num_attention_heads == 2
    assert model.lm_head.weight is model.model.embed_tokens.weight
    # per layer: 4 d^2 attention + 3 d d_ff MLP + 2 d norms; plus the final norm
    d, f = 64, 192
    assert count_parameters(model) == 2 * (4 * d * d + 3 * d * f + 2 * d) + d
