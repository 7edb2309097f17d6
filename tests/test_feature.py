"""Known answers for the shallow feature methods: TCA, JDA, CORAL."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from tlbench.datasets.toy import toy_shift
from tlbench.errors import ConfigError, DataError
from tlbench.kernels import pairwise_kernel
from tlbench.methods.baseline import SourceOnly
from tlbench.methods.feature.coral import CORAL
from tlbench.methods.feature.jda import JDA
from tlbench.methods.feature.tca import TCA
from tlbench.task import Domain, TransferTask


def _task(n_source=60, n_target=50, d=4, shift=1.0, seed=0) -> TransferTask:
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_source, d))
    Xt = rng.normal(size=(n_target, d)) * 1.3 + shift
    ys = rng.integers(0, 2, n_source)
    yt = rng.integers(0, 2, n_target)
    return TransferTask(
        source=Domain(Xs, ys),
        target=Domain(Xt),
        test=Domain(Xt, yt),
        kind="tabular",
        num_classes=2,
    )


def _reference_embedding(X, ns, k, mu, kernel, **kw):
    """Direct scipy solution of the published form: eig((K M K + mu I)^-1 K H K), M / ||M||_F."""
    n = len(X)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    K = pairwise_kernel(X, kernel=kernel, **kw).numpy()
    e = np.r_[np.full(ns, 1 / ns), np.full(n - ns, -1 / (n - ns))][:, None]
    M = e @ e.T
    M /= np.linalg.norm(M)
    H = np.eye(n) - 1 / n
    w, V = scipy.linalg.eig(K @ H @ K, K @ M @ K + mu * np.eye(n))
    order = np.argsort(-w.real)[:k]
    W = V[:, order].real
    W /= np.linalg.norm(W, axis=0)  # unit-norm eigenvectors, as the reference scripts
    return K @ W


def _match_up_to_sign(A, B, atol):
    signs = np.sign(np.sum(A * B, axis=0))
    np.testing.assert_allclose(A, B * signs, atol=atol)


@pytest.mark.parametrize(
    ("kernel", "n_source", "n_target", "d", "kw"),
    [
        ("linear", 30, 25, 4, {}),  # n > d: the exact reduction to a d x d problem
        ("linear", 8, 6, 20, {}),  # n <= d: the n x n kernel path
        ("rbf", 30, 25, 4, {"gamma": 0.7}),
        ("polynomial", 30, 25, 4, {"gamma": 0.5, "degree": 2, "coef0": 1.0}),
    ],
)
def test_tca_equals_direct_eigensolution(kernel, n_source, n_target, d, kw):
    task = _task(n_source, n_target, d)
    k = 3
    tca = TCA(n_components=k, mu=0.5, kernel=kernel, normalize_output=False, **kw)
    Zs, Zt = tca.fit(task.without_test()).fit_transform(task.without_test())
    X = np.vstack([task.source.X, task.target.X])
    ref = _reference_embedding(X, n_source, k, 0.5, kernel, **kw)
    _match_up_to_sign(np.vstack([Zs, Zt]), ref, atol=1e-8 * np.abs(ref).max())
    # transform (the transductive map) reproduces the embedding of the target samples
    np.testing.assert_allclose(tca.transform(task.target.X), Zt, atol=1e-10)


@pytest.mark.parametrize("kernel", ["linear", "rbf", "primal"])
def test_lanczos_path_equals_dense_path(monkeypatch, kernel):
    import tlbench.methods.feature.tca as tca_module

    task = _task(60, 50, 50)  # n = 110 > d = 50: the feature path for linear
    dense = TCA(n_components=3, kernel=kernel, gamma=0.1, normalize_output=False)
    Zd = np.vstack(dense.fit(task).fit_transform(task))
    monkeypatch.setattr(tca_module, "LANCZOS_MIN_R", 10)
    lanczos = TCA(**dense.get_params())
    Zl = np.vstack(lanczos.fit(task).fit_transform(task))
    np.testing.assert_allclose(lanczos.eigenvalues_, dense.eigenvalues_, rtol=1e-10)
    _match_up_to_sign(Zl, Zd, atol=1e-8 * np.abs(Zd).max())


def test_nystrom_with_every_point_as_landmark_is_exact():
    task = _task(40, 30, 3)
    exact = TCA(n_components=4, kernel="rbf", gamma=0.5, normalize_output=False)
    approx = exact.set_params(n_landmarks=70).__class__(
        **{**exact.get_params(), "solver": "nystrom"}
    )
    Ze = np.vstack(exact.fit(task).fit_transform(task))
    Zn = np.vstack(approx.fit(task).fit_transform(task))
    assert approx.solver_ == "nystrom" and exact.solver_ == "kernel"
    _match_up_to_sign(Zn, Ze, atol=1e-6)


def test_tca_lowers_the_domain_mmd():
    task = _task(150, 150, 5, shift=2.0)
    for kernel in ("linear", "rbf"):
        tca = TCA(n_components=2, kernel=kernel, normalize_input=False).fit(task)
        d = tca.diagnostics_
        assert d["mmd2_after"] < 0.5 * d["mmd2_before"], (kernel, d)


def _unit(Z):
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def _tca_reference_map(X, ns, k, mu, kernel):
    """Unit-norm top-k solutions of the TCA eigenproblem (Pan et al. 2011), written directly.

    primal: W acts on the features, eig((X^T M X + mu I)^-1 X^T H X); linear: the dual
    eig((K M K + mu I)^-1 K H K) with K = X X^T. X is L2-normalised per row, M / ||M||_F.
    """
    n = len(X)
    e = np.r_[np.full(ns, 1 / ns), np.full(n - ns, -1 / (n - ns))][:, None]
    M = e @ e.T / np.linalg.norm(e @ e.T)
    H = np.eye(n) - 1 / n
    if kernel == "primal":
        A, B = X.T @ H @ X, X.T @ M @ X + mu * np.eye(X.shape[1])
    else:
        K = X @ X.T
        A, B = K @ H @ K, K @ M @ K + mu * np.eye(n)
    w, V = scipy.linalg.eig(A, B)
    order = np.argsort(-w.real)[:k]
    W = V[:, order].real
    return W / np.linalg.norm(W, axis=0), w.real[order]


@pytest.mark.parametrize("kernel", ["primal", "linear"])
def test_tca_map_embedding_and_1nn_equal_a_direct_implementation(kernel):
    # fails if the eigenproblem, the normalisations, transform() of new samples or the
    # classifier on the embedded source differ from the published form (default settings)
    task = _task(50, 40, 6, shift=0.7, seed=4)
    k, mu = 3, 0.5
    tca = TCA(n_components=k, kernel=kernel, mu=mu).fit(task.without_test())
    Xs, Xt, Xq = (_unit(task.source.X), _unit(task.target.X), _unit(task.test.X[:25]))
    X = np.vstack([Xs, Xt])
    W, w = _tca_reference_map(X, len(Xs), k, mu, kernel)
    np.testing.assert_allclose(tca.eigenvalues_.numpy(), w, rtol=1e-8)
    if kernel == "primal":
        _match_up_to_sign(tca.components_.numpy(), W, atol=1e-8)

        def embed(Q):
            return _unit(Q @ W)
    else:

        def embed(Q):
            return _unit(Q @ X.T @ W)  # k(x, X_fit) W, the dual map of new samples

    ref_test = embed(Xq)
    _match_up_to_sign(tca.transform(task.test.X[:25]), ref_test, atol=1e-8)
    Zs, Zt = tca.fit_transform(task.without_test())
    _match_up_to_sign(np.vstack([Zs, Zt]), embed(X), atol=1e-8)
    # 1-NN is invariant to flipping a component's sign: the predictions must be equal
    ref = KNeighborsClassifier(n_neighbors=1).fit(embed(Xs), task.source.y).predict(ref_test)
    np.testing.assert_array_equal(tca.predict(task.test.X[:25]), ref)


def test_float32_and_component_clipping(caplog):
    task = _task(50, 40, 3)
    tca = TCA(n_components=10, dtype="float32").fit(task)  # 10 > d = 3: cut to 3, with a warning
    assert tca.n_components_ == 3 and tca.components_.dtype == torch.float32
    assert "exceeds" in caplog.text
    assert tca.precision_ == "fp32"


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"n_components": 500}, ConfigError, "n_components"),
        ({"n_components": 0}, ConfigError, "n_components"),
        ({"mu": 0.0}, ConfigError, "mu"),
        ({"mu": -1.0}, ConfigError, "mu"),
        ({"kernel": "sigmoid"}, ConfigError, "kernel"),
        ({"solver": "lanczos"}, ConfigError, "solver"),
        ({"component_scaling": "l1"}, ConfigError, "component_scaling"),
        ({"solver": "nystrom", "kernel": "rbf", "n_landmarks": 1}, ConfigError, "n_landmarks"),
    ],
)
def test_bad_hyperparameters_fail_in_fit(params, error, match):
    tca = TCA(**params)  # the constructor only stores
    with pytest.raises(error, match=match):
        tca.fit(_task())


def test_bad_inputs():
    task = _task()
    tca = TCA(n_components=2).fit(task)
    with pytest.raises(DataError, match="features"):
        tca.transform(np.zeros((3, 7)))
    with pytest.raises(ConfigError, match="n_iter"):
        JDA(n_iter=0).fit(task)
    with pytest.raises(ConfigError, match="regularization"):
        CORAL(regularization=0).fit(task)
    # all-zero samples are left at zero by the normalisation, never NaN
    X = task.source.X.copy()
    X[:3] = 0
    zero = TransferTask(Domain(X, task.source.y), task.target, None, "tabular", 2)
    Zs, _ = TCA(n_components=2).fit(zero).fit_transform(zero)
    assert np.isfinite(Zs).all()


def _accuracy(method, task) -> float:
    method.fit(task.without_test())
    return float(np.mean(method.predict(task.test.X) == task.test.y))


def test_jda_and_tca_beat_source_only_on_a_shifted_task():
    gains = []
    for seed in range(4):  # averaged over seeds: single small tasks are noisy
        task = toy_shift(
            n_source=300,
            n_target=300,
            n_features=10,
            n_classes=3,
            shift="translation",
            shift_size=2.0,
            protocol="transductive",
            seed=seed,
        )
        base = _accuracy(SourceOnly(estimator="knn1"), task)
        jda = _accuracy(JDA(n_components=4, n_iter=5, random_state=0), task)
        tca = _accuracy(TCA(n_components=4), task)
        gains.append((jda - base, tca - base))
    jda_gain, tca_gain = np.mean(gains, axis=0)
    assert jda_gain > 0.05 and tca_gain > 0.05, gains


def test_coral_beats_source_only_under_a_covariance_shift():
    # the shift CORAL undoes: the target is the source seen through an anisotropic linear map
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2.0, (3, 6))
    ys, yt = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    Xs = centers[ys] + rng.normal(size=(300, 6))
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    Xt = (centers[yt] + rng.normal(size=(300, 6))) @ (Q * [4.0, 3.0, 2.0, 0.5, 0.3, 0.2]) @ Q.T
    Xs, Xt = Xs - Xs.mean(0), Xt - Xt.mean(0)
    task = TransferTask(Domain(Xs, ys), Domain(Xt), Domain(Xt, yt), "tabular", 3)
    base = _accuracy(SourceOnly(estimator="knn1"), task)
    coral = _accuracy(CORAL(), task)
    assert coral > base + 0.1, (coral, base)


def test_jda_records_pseudo_label_history():
    task = toy_shift(n_source=150, n_target=150, n_classes=3, shift="translation", seed=0)
    jda = JDA(n_components=3, n_iter=4).fit(task.without_test())
    assert len(jda.history_) == 3 and jda.pseudo_labels_.shape == (len(task.target),)
    assert set(jda.diagnostics_) == {"mmd2_before", "mmd2_after"}


def test_coral_matches_the_closed_form():
    task = _task(80, 70, 3)
    coral = CORAL(regularization=1.0, estimator="knn1").fit(task)  # the map: any classifier
    Xs, Xt = task.source.X, task.target.X
    Cs = np.cov(Xs.T) + np.eye(3)
    Ct = np.cov(Xt.T) + np.eye(3)
    A = np.real(scipy.linalg.fractional_matrix_power(Cs, -0.5) @ scipy.linalg.sqrtm(Ct))
    np.testing.assert_allclose(coral.mapping_, A, atol=1e-10)
    aligned = Xs @ coral.mapping_
    # the re-coloured source has the target's (regularised) covariance, up to the +I terms
    np.testing.assert_allclose(np.cov(aligned.T) + A.T @ A, A.T @ Cs @ A, atol=1e-8)
    np.testing.assert_array_equal(coral.transform(Xt), Xt)


def _coral_c_task():
    """Seeded task whose C best by source CV (1.0) is not the C best on the target labels."""
    rng = np.random.default_rng(15)
    ys, yt = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
    Xs = rng.normal(size=(60, 6))
    Xs[:, 0] += 2 * ys - 1
    Xt = rng.normal(size=(60, 6)) * [1, 1, 2, 2, 1, 1]
    Xt[:, 0] += 2 * yt - 1
    Xt[:, 1] += 0.7 * (2 * yt - 1)
    return TransferTask(Domain(Xs, ys), Domain(Xt), Domain(Xt, yt), "tabular", 2)


def test_coral_linear_svm_cv_selects_c_on_the_source_only():
    # fails if C were chosen on target labels, on other folds, on the unaligned source or
    # with another tie rule than the first best of the grid
    grid = [1e-3, 1e-2, 1e-1, 1.0]
    task = _coral_c_task()
    coral = CORAL(estimator="linear_svm_cv", c_grid=grid, random_state=0)
    coral.fit(task.without_test())
    aligned = task.source.X @ coral.mapping_
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    search = GridSearchCV(SVC(kernel="linear"), {"C": grid}, cv=folds).fit(aligned, task.source.y)
    d = coral.diagnostics_
    assert d["svm_c"] == search.best_params_["C"] == coral.estimator_.C == 1.0
    assert d["svm_cv_accuracy"] == pytest.approx(search.best_score_, abs=1e-12)
    # the premise: choosing on the target labels would pick another C (0.01, by 0.1 accuracy)
    target_acc = [
        np.mean(SVC(kernel="linear", C=c).fit(aligned, task.source.y).predict(task.test.X)
                == task.test.y)
        for c in grid
    ]  # fmt: skip
    assert grid[int(np.argmax(target_acc))] == 1e-2
    # the final SVM is refitted on the whole aligned source with that C
    ref = SVC(kernel="linear", C=1.0).fit(aligned, task.source.y)
    np.testing.assert_array_equal(coral.predict(task.test.X), ref.predict(task.test.X))
    # whatever the target labels say (given by mistake with the test set), nothing changes
    flipped = replace(task, test=Domain(task.test.X, 1 - task.test.y))
    again = CORAL(estimator="linear_svm_cv", c_grid=grid, random_state=0).fit(flipped)
    assert again.diagnostics_["svm_c"] == 1.0
    np.testing.assert_array_equal(again.predict(task.test.X), coral.predict(task.test.X))


def _separable_coral_task():
    """A separable source: every C of a grid scores 1.0 in cross-validation (a tie)."""
    rng = np.random.default_rng(0)
    ys = np.repeat([0, 1], 20)
    Xs = rng.normal(size=(40, 3))
    Xs[:, 0] += 6 * (2 * ys - 1)
    return TransferTask(Domain(Xs, ys), Domain(rng.normal(size=(40, 3))), None, "tabular", 2)


def test_coral_cv_ties_go_to_the_smallest_c():
    coral = CORAL(estimator="linear_svm_cv", c_grid=[1.0, 10.0, 100.0], random_state=0)
    coral.fit(_separable_coral_task())
    assert coral.diagnostics_["svm_cv_accuracy"] == 1.0
    assert coral.diagnostics_["svm_c"] == coral.estimator_.C == 1.0


def test_coral_cv_ties_go_to_the_smallest_c_of_an_unsorted_grid():
    coral = CORAL(estimator="linear_svm_cv", c_grid=[100.0, 10.0, 1.0], random_state=0)
    coral.fit(_separable_coral_task())
    assert coral.diagnostics_["svm_cv_accuracy"] == 1.0
    assert coral.diagnostics_["svm_c"] == 1.0


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"estimator": "svm"}, "estimator"),
        ({"estimator": "linear_svm_cv", "c_grid": [0.0, 1.0]}, "c_grid"),
        ({"estimator": "linear_svm_cv", "c_grid": []}, "c_grid"),
        ({"estimator": "linear_svm_cv", "cv_folds": 1}, "cv_folds"),
        ({"estimator": "linear_svm_cv", "cv_folds": 1000}, "cv_folds"),
    ],
)
def test_coral_bad_classifier_options(params, match):
    with pytest.raises(ConfigError, match=match):
        CORAL(**params).fit(_task())


@pytest.mark.realdata
def test_coral_paper_protocol_on_caltech_to_amazon(data_dir):
    from tlbench.datasets.office_caltech import office_caltech_surf

    task = office_caltech_surf(source="caltech", target="amazon", data_dir=data_dir)
    coral = CORAL(estimator="linear_svm_cv", random_state=0)
    assert _accuracy(coral, task) == pytest.approx(0.520, abs=0.002)  # Sun et al.: 52.1
    assert coral.diagnostics_["svm_c"] == 1e-3


@pytest.mark.realdata
def test_tca_reproduces_the_published_caltech_to_amazon(data_dir):
    from tlbench.datasets.office_caltech import office_caltech_surf

    task = office_caltech_surf(source="caltech", target="amazon", data_dir=data_dir)
    acc = _accuracy(TCA(), task)
    assert acc == pytest.approx(0.456, abs=0.002)  # benchmark collection: 45.6


@pytest.mark.realdata
def test_jda_reproduces_the_paper_on_usps_to_mnist(data_dir):
    from tlbench.datasets.digits import mnist_usps

    task = mnist_usps(source="usps", target="mnist", data_dir=data_dir)
    acc = _accuracy(JDA(mu=0.1), task)
    assert acc == pytest.approx(0.5965, abs=0.002)  # Long et al. 2013, Table 2: 59.65


@pytest.mark.gpu
def test_cuda_matches_cpu():
    task = _task(300, 250, 8)
    for params in ({"kernel": "linear"}, {"kernel": "rbf", "gamma": 0.3}, {"kernel": "primal"}):
        cpu = TCA(n_components=3, **params).fit(task)
        gpu = TCA(n_components=3, device="cuda", **params).fit(task)
        assert gpu.device_.startswith("cuda")
        _match_up_to_sign(gpu.transform(task.test.X), cpu.transform(task.test.X), atol=1e-6)
    cpu = CORAL(estimator="knn1").fit(task)
    gpu = CORAL(estimator="knn1", device="cuda").fit(task)
    np.testing.assert_allclose(gpu.mapping_, cpu.mapping_, atol=1e-8)
