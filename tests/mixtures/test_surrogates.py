"""Surrogates recover known synthetic laws from Dirichlet samples and follow the sklearn API."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from mixtures.errors import ConfigError, DataError
from mixtures.surrogates import make_surrogate, surrogate_names

D = 5
T = np.array([-2.0, -0.5, 0.0, 0.7, 1.5])


def law(X: np.ndarray) -> np.ndarray:
    """A Data-Mixing-Laws loss: 2 + 1.5 * exp(t . r)."""
    return 2.0 + 1.5 * np.exp(X @ T)


def dirichlet(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(D, 0.7), size=n)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, Xt = dirichlet(48, 0), dirichlet(200, 1)
    noise = np.random.default_rng(2).normal(0, 0.005, size=48)
    return X, law(X) + noise, Xt, law(Xt)


FAST = [
    "ridge",
    "lightgbm",
    "mixing_law",
    "loglinear",
    "gp",
    "gp_linear",
    "gp_hybrid",
    "gp_hybrid_linear",
    "gp_average",
]


@pytest.mark.parametrize("name", FAST)
def test_ranks_unseen_mixtures_of_a_known_law(name, data) -> None:
    X, y, Xt, yt = data
    model = make_surrogate(name, random_state=0)
    assert model.fit(X, y) is model
    rho = spearmanr(model.predict(Xt), yt)[0]
    assert rho > {"lightgbm": 0.8, "loglinear": 0.9}.get(name, 0.95), (name, rho)


@pytest.mark.parametrize("features", ["sqrt", "x", "log"])
def test_hybrid_kernel_needs_both_feature_maps(features) -> None:
    # checked by name, not by the feature count: with an even number of domains 'sqrt' alone
    # would otherwise pass as half raw, half sqrt
    with pytest.raises(ConfigError, match="hybrid GP kernel needs features 'x\\+sqrt'"):
        make_surrogate("gp_hybrid", features=features)


def test_hybrid_linear_kernel_is_a_bayesian_linear_model_in_w_and_sqrt_w(data) -> None:
    """Without the RBF part the GP's mean is linear in (w, sqrt(w)): it recovers such a target
    exactly enough to rank it, its kernel has just the two linear parts, and it needs both maps."""
    from mixtures.surrogates.gp import GPSurrogate

    X, _, Xt, _ = data
    coef = np.linspace(-1.0, 1.0, D)

    def truth(A: np.ndarray) -> np.ndarray:
        return 3.0 + A @ coef + np.sqrt(A) @ coef[::-1]

    model = GPSurrogate(kernel="hybrid_linear", features="x+sqrt", random_state=0)
    model.fit(X, truth(X))
    assert len(model.model_.covar_module.kernels) == 2
    assert spearmanr(model.predict(Xt), truth(Xt))[0] > 0.99
    with pytest.raises(ConfigError, match="hybrid_linear GP kernel needs features 'x\\+sqrt'"):
        GPSurrogate(kernel="hybrid_linear", features="sqrt")


def test_hybrid_gp_prefers_the_linear_part_that_fits(data) -> None:
    """On a target linear in sqrt(w) the evidence gives the sqrt linear part the larger scale,
    on one linear in w the raw part: the kernel picks the feature map from the runs alone."""
    X, _, _, _ = data
    coef = np.linspace(-1.0, 1.0, D)
    scales = {}
    for name, target in (("sqrt", np.sqrt(X) @ coef), ("x", X @ coef)):
        model = make_surrogate("gp_hybrid", random_state=0).fit(X, 3.0 + target)
        raw, root, _ = model.model_.covar_module.kernels
        scales[name] = tuple(  # prior variance of the linear part: outputscale x slope variance
            float((k.outputscale * k.base_kernel.variance).detach()) for k in (raw, root)
        )
    assert scales["sqrt"][1] > scales["sqrt"][0], scales
    assert scales["x"][0] > scales["x"][1], scales


def test_mixing_law_recovers_its_parameters(data) -> None:
    X, y, _, _ = data
    model = make_surrogate("mixing_law").fit(X, y)
    # exponents are identified up to a constant shift (weights sum to 1): compare differences
    np.testing.assert_allclose(np.diff(model.t_), np.diff(T), atol=0.1)
    np.testing.assert_allclose(model.c_, 2.0, atol=0.1)


def test_gp_std_is_small_at_data_and_larger_far_away(data) -> None:
    X, y, _, _ = data
    model = make_surrogate("gp", random_state=0).fit(X, y)
    mean, std = model.predict(X[:5], return_std=True)
    np.testing.assert_allclose(mean, y[:5], atol=0.05)
    corner = np.eye(D)[:1]  # a vertex: far from the Dirichlet(0.7) cloud
    assert model.predict(corner, return_std=True)[1][0] > 2 * std.mean()


def test_ensemble_weights_members_by_cross_validation(data) -> None:
    X, y, Xt, yt = data
    # ridge instead of the default GP member keeps this test fast; the weighting is the same
    members = (make_surrogate("ridge"), make_surrogate("mixing_law"))
    model = make_surrogate("ensemble", members=members, random_state=0).fit(X, y)
    assert not any(hasattr(m, "n_features_in_") for m in members)  # fitted copies, not these
    assert [e.random_state for e in model.estimators_] == [0, 0]
    assert model.weights_.shape == (2,) and np.isclose(model.weights_.sum(), 1.0)
    # the data follow the exp law exactly, so cross-validation must favour that member
    assert model.weights_[1] > model.weights_[0]
    mean, std = model.predict(Xt, return_std=True)
    assert spearmanr(mean, yt)[0] > 0.95 and np.all(std > 0)


def test_regmix_lightgbm_makes_no_split_below_40_runs(data) -> None:
    X, y, Xt, _ = data
    small = make_surrogate("regmix_lgbm").fit(X[:30], y[:30])
    assert np.ptp(small.predict(Xt)) == 0.0  # min_child_samples=20: RegMix's settings stall
    assert np.ptp(make_surrogate("lightgbm").fit(X[:16], y[:16]).predict(Xt)) > 0


def test_same_seed_same_predictions(data) -> None:
    X, y, Xt, _ = data
    a = make_surrogate("gp", random_state=3, max_iter=30).fit(X[:20], y[:20]).predict(Xt)
    b = make_surrogate("gp", random_state=3, max_iter=30).fit(X[:20], y[:20]).predict(Xt)
    np.testing.assert_array_equal(a, b)


def test_gp_rejects_an_unknown_kernel() -> None:
    with pytest.raises(ConfigError, match="unknown GP kernel 'cubic'"):
        make_surrogate("gp", kernel="cubic")


def test_registry_and_errors(data) -> None:
    X, y, _, _ = data
    assert {"ridge", "lightgbm", "gp", "mixing_law", "loglinear", "ensemble"} <= set(
        surrogate_names()
    )
    with pytest.raises(ConfigError, match="unknown surrogate 'forest'"):
        make_surrogate("forest")
    with pytest.raises(ConfigError, match="invalid parameters"):
        make_surrogate("ridge", depth=3)
    with pytest.raises(DataError, match="not fitted"):
        make_surrogate("ridge").predict(X)
    with pytest.raises(DataError, match="3 rows but y has 2"):
        make_surrogate("ridge").fit(X[:3], y[:2])
    with pytest.raises(DataError, match="non-finite value at position 1"):
        make_surrogate("ridge").fit(X[:3], [1.0, np.nan, 2.0])
    with pytest.raises(DataError, match="model was fit on 5"):
        make_surrogate("ridge").fit(X, y).predict(X[:, :4])
    with pytest.raises(DataError, match="no predictive std"):
        make_surrogate("ridge").fit(X, y).predict(X, return_std=True)


def test_light_name_lists_match_the_registries() -> None:
    import numpy as np

    from mixtures.constraints import Bounds
    from mixtures.names import DEFAULT_BO_SURROGATE, OPTIMIZER_NAMES, SURROGATE_NAMES
    from mixtures.optimizers import BOOptimizer, make_optimizer

    assert sorted(SURROGATE_NAMES) == sorted(surrogate_names())
    # every listed optimizer name is one make_optimizer builds, and nothing else is
    domains = ["a", "b", "c"]
    common = dict(domains=domains, bounds=Bounds.unbounded(domains), prior=np.ones(3), seed=0)
    built = {name: make_optimizer(name, **common) for name in OPTIMIZER_NAMES}
    assert isinstance(built["bo"], BOOptimizer)
    default_gp = make_surrogate(DEFAULT_BO_SURROGATE).get_params()
    assert built["bo"].surrogate.get_params() == default_gp
    with pytest.raises(ConfigError, match="unknown optimizer 'cmaes'"):
        make_optimizer("cmaes", **common)
    # the config's list of BO surrogates is exactly the registry's names BO accepts
    from mixtures.names import BO_SURROGATE_NAMES

    accepted = []
    for name in surrogate_names():
        try:
            make_optimizer("bo", surrogate=name, **common)
        except ConfigError as exc:
            assert "bo needs a GP surrogate" in str(exc)
        else:
            accepted.append(name)
    assert sorted(accepted) == sorted(BO_SURROGATE_NAMES)


def test_every_gp_kernel_is_listed_and_builds() -> None:
    from typing import get_args

    from mixtures.surrogates.gp import KERNELS, X_SQRT_KERNELS, GPSurrogate, KernelName

    assert get_args(KernelName) == KERNELS and "hybrid_linear" in KERNELS
    for kernel in KERNELS:
        features = "x+sqrt" if kernel in X_SQRT_KERNELS else "sqrt"
        assert GPSurrogate(kernel=kernel, features=features).kernel == kernel
    with pytest.raises(ConfigError, match="unknown GP kernel 'cubic'"):
        GPSurrogate(kernel="cubic")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs features 'x\\+sqrt'"):
        GPSurrogate(kernel="hybrid_linear")


def test_fresh_copies_keep_the_settings_and_run_the_checks(data) -> None:
    from mixtures.surrogates.base import fresh

    X, y, _, _ = data
    model = make_surrogate("gp_hybrid", max_iter=17, random_state=3)
    copy = fresh(model, random_state=5)
    assert copy is not model and copy.get_params() == {**model.get_params(), "random_state": 5}
    fitted = fresh(make_surrogate("ridge")).fit(X, y)
    assert not hasattr(fresh(fitted), "n_features_in_")
    with pytest.raises(ConfigError, match="needs features 'x\\+sqrt'"):
        fresh(model, features="sqrt")


def test_a_gp_whose_hyperparameter_fit_fails_keeps_its_prior_and_predicts(monkeypatch):
    import botorch.exceptions.errors

    import mixtures.surrogates.gp as gp_module

    def fail(*args, **kwargs):
        raise botorch.exceptions.errors.ModelFittingError(
            "All attempts to fit the model have failed."
        )

    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(3), size=12)
    y = X @ np.array([1.0, 2.0, 3.0])
    monkeypatch.setattr(gp_module, "fit_gpytorch_mll", fail)
    with pytest.warns(RuntimeWarning, match="GP hyperparameter fit failed"):
        model = make_surrogate("gp").fit(X, y)
    assert model.fit_failed_
    mean, std = model.predict(X, return_std=True)
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    # the prior's hyperparameters still follow the data: the ranking of the runs is kept
    assert spearmanr(mean, y)[0] > 0.8
