"""Exports of the chosen mixture: shape of each format, sums to 1, loud errors."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from mixtures.errors import ConfigError, MixtureError
from mixtures.export import (
    export_all,
    interleave_probabilities,
    megatron_data_path,
    olmo_source_mixture,
    parse_megatron_data_path,
    regmix_config,
)

# Sums to 1 within Mixture's tolerance, not exactly: exports must still sum to 1 exactly enough.
MIX = {"web": 0.5 + 4e-7, "code": 0.3, "books": 0.2, "math": 0.0}


def test_interleave_probabilities_follow_the_given_order_and_sum_to_one() -> None:
    probs = interleave_probabilities(MIX, ["code", "web", "books"])
    assert len(probs) == 3
    assert probs[0] == pytest.approx(0.3, abs=1e-6)
    assert probs[1] == pytest.approx(0.5, abs=1e-6)
    assert abs(math.fsum(probs) - 1.0) < 1e-12


def test_interleave_probabilities_reject_a_dropped_or_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match=r"leaves out \['books'\]"):
        interleave_probabilities(MIX, ["code", "web"])
    with pytest.raises(ConfigError, match=r"names \['wiki'\], not domains"):
        interleave_probabilities(MIX, ["code", "web", "books", "wiki"])
    with pytest.raises(ConfigError, match="more than once"):
        interleave_probabilities(MIX, ["code", "web", "books", "web"])


def test_invalid_mixture_is_rejected() -> None:
    with pytest.raises(MixtureError, match="sum to 1"):
        interleave_probabilities({"a": 0.5, "b": 0.6}, ["a", "b"])


def test_olmo_sources_leave_out_zero_weights_and_compute_repetition() -> None:
    out = olmo_source_mixture(
        MIX,
        tokens_available={"web": 10_000, "code": 1_000, "books": 5_000},
        requested_tokens=10_000,
    )
    sources = {s["source_name"]: s for s in out["sources"]}
    assert sorted(sources) == ["books", "code", "web"]
    assert abs(math.fsum(s["target_ratio"] for s in out["sources"]) - 1.0) < 1e-12
    assert sources["code"]["max_repetition_ratio"] == pytest.approx(3.0, rel=1e-5)
    assert sources["web"]["max_repetition_ratio"] == 1.0
    assert sources["books"]["paths"] == ["books/*.npy"]
    assert set(sources["web"]) == {
        "source_name",
        "target_ratio",
        "paths",
        "max_repetition_ratio",
        "max_source_fraction",
    }


def test_olmo_paths_must_cover_every_positive_domain() -> None:
    with pytest.raises(ConfigError, match=r"paths has no entry for domain\(s\) \['web'\]"):
        olmo_source_mixture(MIX, paths={"code": ["c/*.npy"], "books": ["b/*.npy"]})
    with pytest.raises(ConfigError, match="both"):
        olmo_source_mixture(MIX, requested_tokens=10)


def test_megatron_string_is_weight_prefix_pairs_that_sum_to_one() -> None:
    text = megatron_data_path(MIX, prefixes={"web": "/d/web", "code": "/d/code", "books": "/d/bk"})
    parts = text.split()
    assert len(parts) == 6
    parsed = parse_megatron_data_path(text)
    assert set(parsed) == {"/d/web", "/d/code", "/d/bk"}
    assert abs(sum(parsed.values()) - 1.0) < 1e-8
    assert parsed["/d/code"] == pytest.approx(0.3, abs=1e-6)
    assert megatron_data_path({"a": 1.0}) == "1 a_text_document"
    with pytest.raises(ConfigError, match="without spaces"):
        megatron_data_path({"a": 1.0}, prefixes={"a": "my data"})


def test_regmix_config_matches_the_shape_of_regmix_files() -> None:
    out = regmix_config(MIX, valid_domains=["py_headers"])
    assert list(out) == ["train", "valid", "model_name"]
    assert sorted(out["train"]) == ["train_books", "train_code", "train_math", "train_web"]
    assert abs(math.fsum(out["train"].values()) - 1.0) < 1e-12
    assert out["valid"] == {"valid_py_headers": 1.0}


def test_export_all_writes_every_format(tmp_path) -> None:
    paths = export_all(MIX, tmp_path / "export", order=["web", "code", "books", "math"])
    assert set(paths) == {"hf", "olmo", "megatron", "regmix"}
    hf = json.loads(paths["hf"].read_text())
    assert hf["datasets"] == ["web", "code", "books", "math"]
    assert hf["probabilities"][3] == 0.0
    assert abs(math.fsum(hf["probabilities"]) - 1.0) < 1e-12
    olmo = yaml.safe_load(paths["olmo"].read_text())
    assert [s["source_name"] for s in olmo["sources"]] == ["books", "code", "web"]
    assert len(paths["megatron"].read_text().split()) == 6
    regmix = yaml.safe_load(paths["regmix"].read_text())
    assert regmix["model_name"] == "tinyllama_1_1b"
    assert not list((tmp_path / "export").glob(".*tmp"))
