from pathlib import Path

import pytest

from configs.schema import load_config
from mixtures.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["demo.yaml", "smoke.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.target.kind == "domain" and cfg.target.holdout
    assert cfg.target_run.train.train_tokens > cfg.proxy.train_tokens


def test_overrides_apply_with_yaml_types():
    cfg = load_config(
        ROOT / "configs/smoke.yaml",
        overrides=["sweep.n_runs=5", "search.method=bo", "corpus.cap_mb=0.5"],
    )
    assert (cfg.sweep.n_runs, cfg.search.method, cfg.corpus.cap_mb) == (5, "bo", 0.5)


def test_bad_config_lists_every_problem_with_its_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntarget: {kind: domain}\nproxy: {model: huge, lr: -1}\n"
        "sweep: {n_runs: 1, colour: red}\nsearch: {method: magic}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    msg = str(info.value)
    for fragment in [
        "target",
        "proxy.model",
        "proxy.lr",
        "sweep.n_runs",
        "sweep.colour",
        "search.method",
        "Extra inputs are not permitted",
    ]:
        assert fragment in msg, fragment
    assert "6 problem(s)" in msg


def test_missing_file_bad_yaml_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "b.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "b.yaml")
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(ROOT / "configs/smoke.yaml", overrides=["sweep.n_runs"])


def test_config_surrogate_names_match_the_registry() -> None:
    from typing import get_args

    from configs.schema import SurrogateName
    from mixtures.surrogates import surrogate_names

    assert sorted(get_args(SurrogateName)) == sorted(surrogate_names())


def test_bo_surrogate_defaults_to_bo_s_gp_and_refuses_what_bo_cannot_use():
    from configs.schema import ExperimentConfig
    from mixtures.names import DEFAULT_BO_SURROGATE

    smoke = ROOT / "configs/smoke.yaml"
    assert load_config(smoke).search.bo_surrogate is None  # regmix: no GP
    bo = load_config(smoke, overrides=["search.method=bo"])
    assert bo.search.bo_surrogate == DEFAULT_BO_SURROGATE  # filled in: the saved config names it
    cfg = load_config(smoke, overrides=["search.method=bo", "search.bo_surrogate=gp_average"])
    assert cfg.search.bo_surrogate == "gp_average"
    # a config dumped and validated again (Prefect parameters, the saved config) is unchanged
    for c in (load_config(smoke), bo, cfg):
        assert ExperimentConfig.model_validate(c.model_dump(mode="json")) == c
    with pytest.raises(ConfigError, match="search.bo_surrogate needs search.method 'bo'"):
        load_config(smoke, overrides=["search.bo_surrogate=gp_hybrid"])  # regmix would ignore it
    with pytest.raises(ConfigError, match="bo_surrogate"):
        load_config(smoke, overrides=["search.method=bo", "search.bo_surrogate=ridge"])
    larger = "search.bo_proxy={model: micro, seq_len: 32, train_tokens: 16384}"
    both = ["search.method=bo", larger, "search.bo_surrogate=gp_average"]
    with pytest.raises(ConfigError, match="bo_proxy needs a single GP .* got 'gp_average'"):
        load_config(smoke, overrides=both)


def test_bo_proxy_needs_bo_a_different_proxy_and_two_runs():
    smoke = ROOT / "configs/smoke.yaml"
    larger = "search.bo_proxy={model: micro, seq_len: 32, train_tokens: 16384}"
    cfg = load_config(smoke, overrides=["search.method=bo", larger])
    assert cfg.search.bo_proxy.model == "micro" and cfg.search.bo_proxy.train_tokens == 16384
    with pytest.raises(ConfigError, match="search.bo_proxy needs search.method 'bo'"):
        load_config(smoke, overrides=[larger])
    same = "search.bo_proxy={model: nano, seq_len: 32, batch_size: 8, train_tokens: 8192, "
    same += "eval_tokens: 1024}"
    with pytest.raises(ConfigError, match="bo_proxy is the same as proxy"):
        load_config(smoke, overrides=["search.method=bo", same])
    one = ["search.method=bo", larger, "search.bo_rounds=1", "search.bo_batch=1"]
    with pytest.raises(ConfigError, match=r"at least 2 runs .* \(bo_rounds \* bo_batch = 1\)"):
        load_config(smoke, overrides=one)


def test_config_literals_are_the_registry_names():
    from typing import get_args

    from configs.schema import BOSurrogateName, SurrogateName
    from mixtures.names import BO_SURROGATE_NAMES, SURROGATE_NAMES

    assert get_args(SurrogateName) == SURROGATE_NAMES
    assert get_args(BOSurrogateName) == BO_SURROGATE_NAMES


def test_duplicate_keys_binary_files_and_bad_set_values_are_named(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: a\nseed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'seed'"):
        load_config(dup)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x00\xff\xfe\x80")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(binary)
    with pytest.raises(ConfigError, match="--set sweep.n_runs: the value is not valid YAML"):
        load_config(ROOT / "configs" / "smoke.yaml", overrides=["sweep.n_runs=[1"])


def test_names_with_a_trailing_newline_are_refused():
    with pytest.raises(ConfigError, match="name"):
        load_config(ROOT / "configs" / "smoke.yaml", overrides=['name="smoke\\n"'])
    with pytest.raises(ConfigError, match="must match"):
        load_config(
            ROOT / "configs" / "smoke.yaml",
            overrides=["corpus.source=folders", 'corpus.folders={"nl\\n": /tmp}'],
        )
