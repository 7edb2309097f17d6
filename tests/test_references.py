"""Independent reference implementations: each method's core formula written again in numpy.

Each test recomputes what a paper defines (JDA's MMD matrix, KMM's QP, TrAdaBoost's weight loop,
DAN's linear-time MK-MMD) without tlbench's helpers and compares values, so that a wrong sign,
normalisation, index or constant in the implementation fails here.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.optimize import minimize
from scipy.spatial.distance import cdist
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from tlbench.datasets.toy import toy_shift
from tlbench.methods.baseline import SourceOnly
from tlbench.methods.feature.dan import DAN, mk_mmd2_pooled, per_kernel_mmd2
from tlbench.methods.feature.jda import JDA, class_factors
from tlbench.methods.feature.tca import mmd_factor
from tlbench.methods.instance import kmm as kmm_module
from tlbench.methods.instance.kmm import KMM, solve_kmm_qp
from tlbench.methods.instance.tradaboost import TrAdaBoost
from tlbench.task import Domain, TransferTask
from tlbench.trainer import Batch

# --------------------------------------------------------------------------- JDA


def _jda_mmd_matrix(ys, yt, classes, marginal_weight):
    """M = w M_0 + sum_c M_c of Long et al. (ICCV 2013), entry by entry.

    (M_c)_ij = 1/(n_s^c)^2 (i, j source of class c), 1/(n_t^c)^2 (both target of class c),
    -1/(n_s^c n_t^c) (one of each), 0 otherwise; M_0 is the same with every sample in one
    class. A class missing from either domain has no term.
    """
    ns, nt = len(ys), len(yt)
    n = ns + nt
    M = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            si, sj = i < ns, j < ns
            M[i, j] = (1 / ns**2 if si else 1 / nt**2) if si == sj else -1 / (ns * nt)
    M *= marginal_weight
    labels = np.r_[ys, yt]
    for c in classes:
        n_sc, n_tc = int(np.sum(ys == c)), int(np.sum(yt == c))
        if n_sc == 0 or n_tc == 0:
            continue
        for i in range(n):
            for j in range(n):
                if labels[i] != c or labels[j] != c:
                    continue
                si, sj = i < ns, j < ns
                if si and sj:
                    M[i, j] += 1 / n_sc**2
                elif not si and not sj:
                    M[i, j] += 1 / n_tc**2
                else:
                    M[i, j] += -1 / (n_sc * n_tc)
    return M


@pytest.mark.parametrize("weight", [1.0, 3.0])
def test_jda_mmd_factors_give_the_published_matrix(weight):
    # fails on a wrong entry of M_c (1/n vs 1/n^2, a sign, source/target offsets) or on a
    # class missing from the target that still gets a term
    ys = np.array([0, 0, 1, 2, 2, 1, 0])
    yt = np.array([1, 0, 0, 1, 1])  # class 2 is missing from the target
    like = torch.zeros(1, dtype=torch.float64)
    E = torch.cat(
        [
            mmd_factor(len(ys), len(yt), like=like) * weight**0.5,
            class_factors(ys, yt, np.array([0, 1, 2]), like=like),
        ],
        1,
    ).numpy()
    assert E.shape[1] == 3  # M_0, M_0 of class 0, M_1; no column for class 2
    np.testing.assert_allclose(E @ E.T, _jda_mmd_matrix(ys, yt, [0, 1, 2], weight), atol=1e-15)


def _jda_task():
    rng = np.random.default_rng(5)
    centers = rng.normal(0, 2.0, (3, 5))
    ys, yt = np.tile([0, 1, 2], 8), np.tile([0, 1, 2], 7)[:20]
    Xs = centers[ys] + rng.normal(size=(24, 5))
    Xt = centers[yt] + 1.5 + rng.normal(size=(20, 5))
    known = np.full(20, -1)
    known[[0, 4]] = yt[[0, 4]]  # two labeled target samples: they keep their true label
    return TransferTask(Domain(Xs, ys), Domain(Xt, known), None, "tabular", 3)


@pytest.mark.parametrize(
    ("marginal_weight", "estimator"),
    [(None, "knn1"), (1.0, "knn1"), (None, "logreg")],  # logreg mislabels a labeled sample
)
def test_jda_iterations_solve_the_published_problem(monkeypatch, marginal_weight, estimator):
    # fails if the pseudo-labels do not come from the classifier on the previous embedding
    # (labeled target samples kept at their true label), if M is not w M_0 + sum_c M_c of
    # those labels, or if the map is not the leading solutions of
    # (X^T M X + mu I)^-1 X^T H X (primal JDA)
    task = _jda_task()
    ns, mu, k = 24, 0.5, 3
    calls = []
    solve = JDA._solve

    def spy(self, X, F, E, cache=None):
        Z = solve(self, X, F, E, cache)
        calls.append((E.numpy().copy(), Z.numpy().copy()))
        return Z

    monkeypatch.setattr(JDA, "_solve", spy)
    jda = JDA(n_components=k, mu=mu, n_iter=3, marginal_weight=marginal_weight,
              estimator=estimator).fit(task)  # fmt: skip
    assert len(calls) == 3
    w = 3.0 if marginal_weight is None else 1.0  # default: the number of classes
    ys, known = task.source.y, task.target.y
    E0 = calls[0][0]  # the first solve is TCA: w M_0 alone
    np.testing.assert_allclose(E0 @ E0.T, _jda_mmd_matrix(ys, known, [], w), atol=1e-15)
    Z_prev = calls[1][1]
    lab = known != -1
    fit_X = np.vstack([Z_prev[:ns], Z_prev[ns:][lab]])
    fit_y = np.r_[ys, known[lab]]
    clf = (KNeighborsClassifier(n_neighbors=1) if estimator == "knn1"
           else LogisticRegression(C=1.0, max_iter=2000))  # fmt: skip
    pseudo = clf.fit(fit_X, fit_y).predict(Z_prev[ns:])
    pseudo[lab] = known[lab]
    np.testing.assert_array_equal(jda.pseudo_labels_, pseudo)
    assert len(np.unique(pseudo)) == 3
    M = _jda_mmd_matrix(ys, pseudo, [0, 1, 2], w)
    E = calls[2][0]
    np.testing.assert_allclose(E @ E.T, M, atol=1e-14)
    # the last map: primal JDA's eigenproblem with that M (Frobenius-normalised, as documented)
    X = np.vstack([task.source.X, task.target.X])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    H = np.eye(len(X)) - 1 / len(X)
    Mn = M / np.linalg.norm(M)
    vals, V = scipy.linalg.eig(X.T @ H @ X, X.T @ Mn @ X + mu * np.eye(X.shape[1]))
    order = np.argsort(-vals.real)[:k]
    A = V[:, order].real
    A /= np.linalg.norm(A, axis=0)
    np.testing.assert_allclose(jda.eigenvalues_.numpy(), vals.real[order], rtol=1e-8)
    got = jda.components_.numpy()
    signs = np.sign(np.sum(got * A, axis=0))
    np.testing.assert_allclose(got, A * signs, atol=1e-8)
    # the objective tr(A^T X^T M X A) of the returned map is the reference's
    obj = np.trace(got.T @ X.T @ Mn @ X @ got)
    assert obj == pytest.approx(np.trace(A.T @ X.T @ Mn @ X @ A), rel=1e-8)


# --------------------------------------------------------------------------- KMM


def _kmm_data(ns=200, nt=240, d=8, seed=0):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(ns, d))
    Xt = rng.normal(0.5, 0.8, size=(nt, d))
    return Xs, Xt


def _kmm_qp_numpy(Xs, Xt, gamma):
    """K and kappa of Huang et al. (2006): kappa_i = (n_s / n_t) sum_j k(x_i, x'_j), rbf."""
    K = np.exp(-gamma * cdist(Xs, Xs, "sqeuclidean"))
    kappa = len(Xs) / len(Xt) * np.exp(-gamma * cdist(Xs, Xt, "sqeuclidean")).sum(1)
    return K, kappa


def _slsqp_optimum(K, kappa, B, lo, hi):
    """min 1/2 b^T K b - kappa^T b  s.t.  0 <= b <= B, lo <= sum(b) <= hi, by SLSQP."""
    n = len(kappa)
    res = minimize(
        lambda b: 0.5 * b @ K @ b - kappa @ b,
        np.ones(n),
        jac=lambda b: K @ b - kappa,
        bounds=[(0, B)] * n,
        constraints=[
            {"type": "ineq", "fun": lambda b: b.sum() - lo, "jac": lambda b: np.ones(n)},
            {"type": "ineq", "fun": lambda b: hi - b.sum(), "jac": lambda b: -np.ones(n)},
        ],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert res.success, res.message
    return res.fun


def _check_feasible(b, B, lo, hi):
    assert b.min() >= -1e-9 and b.max() <= B + 1e-9
    assert lo - 1e-6 <= b.sum() <= hi + 1e-6


@pytest.mark.parametrize(
    ("eps", "B"),
    [(None, 1000.0), (0.05, 3.0)],  # paper defaults; slab and box bound both active
)
@pytest.mark.parametrize("fallback", [False, True])
def test_kmm_qp_at_n_200_matches_slsqp(eps, B, fallback):
    # fails if the active-set solver, or its projected-gradient fallback (taken when the
    # active-set method stops early: max_steps=1), stops short of the optimum or leaves the set
    Xs, Xt = _kmm_data()
    K, kappa = _kmm_qp_numpy(Xs, Xt, gamma=0.5)
    ns = len(Xs)
    e = (math.sqrt(ns) - 1) / math.sqrt(ns) if eps is None else eps
    lo, hi = ns * (1 - e), ns * (1 + e)
    extra = {"max_steps": 1} if fallback else {}
    beta, info = solve_kmm_qp(torch.as_tensor(K), torch.as_tensor(kappa), upper=B,
                              lower_sum=lo, upper_sum=hi, tol=1e-8, **extra)  # fmt: skip
    assert info["converged"] and (info["iterations"] > 0) == fallback
    ref = _slsqp_optimum(K, kappa, B, lo, hi)
    b = beta.numpy()
    _check_feasible(b, B, lo, hi)
    ours = 0.5 * b @ K @ b - kappa @ b
    assert ours == pytest.approx(info["objective"], rel=1e-12)
    assert abs(ours - ref) <= 1e-9 * abs(ref)


def _fail_active_set(rows, kappa, *args, **kwargs):
    """An active-set method that gives up at once: the solver must fall back."""
    return torch.zeros_like(kappa), -kappa, 0.0, 1, False


@pytest.mark.parametrize(("eps", "B"), [(None, 1000.0), (0.05, 3.0)])
def test_kmm_method_on_its_fallback_path_reaches_the_reference_optimum(monkeypatch, eps, B):
    # the method's own kappa (n_s / n_t scaling), eps (the paper's default), B and gamma,
    # solved through the fallback: fails if any of them differs from Huang et al.'s QP
    monkeypatch.setattr(kmm_module, "_active_set", _fail_active_set)
    Xs, Xt = _kmm_data(seed=1)
    task = TransferTask(Domain(Xs, (Xs[:, 0] > 0).astype(np.int64)), Domain(Xt), None,
                        "tabular", 2)  # fmt: skip
    m = KMM(gamma=0.5, B=B, eps=eps, tol=1e-8, device="cpu", random_state=0).fit(task)
    d = m.diagnostics_
    assert d["newton_steps"] == 1 and d["iterations"] > 0 and d["converged"]
    ns = len(Xs)
    e = (math.sqrt(ns) - 1) / math.sqrt(ns) if eps is None else eps
    assert d["eps"] == pytest.approx(e, rel=1e-15)
    lo, hi = ns * (1 - e), ns * (1 + e)
    K, kappa = _kmm_qp_numpy(Xs, Xt, gamma=0.5)
    b = m.weights_
    _check_feasible(b, B, lo, hi)
    ours = 0.5 * b @ K @ b - kappa @ b
    assert ours == pytest.approx(d["objective"], rel=1e-10)
    ref = _slsqp_optimum(K, kappa, B, lo, hi)
    assert abs(ours - ref) <= 1e-9 * abs(ref)


def _unit_weights(K, kappa, **kwargs):
    return torch.ones_like(kappa), {
        "objective": 0.0,
        "kkt_residual": 0.0,
        "newton_steps": 0,
        "iterations": 0,
        "converged": True,
        "kernel_rows": 0,
    }


@pytest.mark.parametrize("estimator", ["logreg", "linear_svm"])
def test_kmm_with_unit_weights_is_source_only(monkeypatch, estimator):
    # beta = 1 everywhere must be plain source_only with the same classifier: fails if KMM
    # trains on other samples, scales the weights, or predicts through another path
    task = toy_shift(n_source=150, n_target=150, seed=2)
    monkeypatch.setattr(kmm_module, "solve_kmm_qp", _unit_weights)
    kmm = KMM(estimator=estimator, random_state=0, device="cpu").fit(task.without_test())
    np.testing.assert_array_equal(kmm.weights_, np.ones(len(task.source)))
    base = SourceOnly(estimator=estimator, random_state=0).fit(task.without_test())
    np.testing.assert_array_equal(kmm.predict(task.test.X), base.predict(task.test.X))
    np.testing.assert_allclose(kmm.estimator_.decision_function(task.test.X),
                               base.estimator_.decision_function(task.test.X),
                               rtol=1e-6, atol=1e-8)  # fmt: skip


def test_kmm_underflow_fallback_to_unit_weights_is_source_only():
    # the documented uniform-weights path (kappa underflows): the same as source_only
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(0, 1, (80, 2)), rng.normal(200, 1, (60, 2))
    ys = (Xs[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(np.int64)
    task = TransferTask(Domain(Xs, ys), Domain(Xt), None, "tabular", 2)
    with pytest.warns(RuntimeWarning, match="underflow"):
        kmm = KMM(gamma=10.0, random_state=0, device="cpu").fit(task)
    np.testing.assert_array_equal(kmm.weights_, np.ones(80))
    base = SourceOnly(random_state=0).fit(task)
    Xq = rng.normal(0, 1.5, (50, 2))
    np.testing.assert_array_equal(kmm.predict(Xq), base.predict(Xq))
    np.testing.assert_allclose(kmm.predict_proba(Xq), base.predict_proba(Xq), atol=1e-8)


# --------------------------------------------------------------------------- TrAdaBoost


class _WeightSpy(LogisticRegression):
    """Logistic regression that records the sample weights of every fit."""

    seen: ClassVar[list[np.ndarray]] = []

    def fit(self, X, y, sample_weight=None):
        _WeightSpy.seen.append(np.array(sample_weight, dtype=float, copy=True))
        return super().fit(X, y, sample_weight=sample_weight)


def _tradaboost_reference(X, y, n, N, make):
    """Dai et al. (2007), Algorithm 1, with tlbench's documented deviations.

    Deviations followed: uniform initial weights, the learner gets p * (n + m), eps_t floored
    at 1e-10 and capped at 1/2, the 0/1 loss for |h - y| (multiclass). Not renormalised per
    round (the paper's form; tlbench's renormalisation must not change p).
    """
    m = len(y) - n
    beta = 1 / (1 + math.sqrt(2 * math.log(n) / N))
    w = np.ones(n + m)
    rounds = []
    for _ in range(N):
        p = w / w.sum()
        h = make().fit(X, y, sample_weight=p * (n + m))
        loss = (h.predict(X) != y).astype(float)
        eps = np.sum(p[n:] * loss[n:]) / np.sum(p[n:])
        e = min(max(eps, 1e-10), 0.5)
        beta_t = e / (1 - e)
        w = np.r_[w[:n] * beta ** loss[:n], w[n:] * beta_t ** (-loss[n:])]
        rounds.append({"weight": p * (n + m), "eps": eps, "beta_t": beta_t, "h": h,
                       "source_wrong": loss[:n].sum()})  # fmt: skip
    return beta, rounds


def _reference_vote(rounds, X, classes):
    """Predictions and vote shares of rounds ceil(N/2) .. N, weighted by ln(1/beta_t)."""
    voters = rounds[math.ceil(len(rounds) / 2) - 1 :]
    alphas = np.array([np.log(1 / r["beta_t"]) for r in voters])
    h = np.stack([r["h"].predict(X) for r in voters])
    votes = np.stack([alphas @ (h == c) for c in classes], 1)
    if len(classes) == 2:  # the paper: 1 iff sum alpha h >= 1/2 sum alpha
        pred = (alphas @ h >= 0.5 * alphas.sum()).astype(int)
    else:
        pred = classes[np.argmax(votes, 1)]
    return pred, votes / votes.sum(1, keepdims=True)


def _boost_task(n_classes, target_labeled):
    return toy_shift(n_source=150, n_target=150, n_classes=n_classes,
                     target_labeled=target_labeled, shift="translation", shift_size=1.0,
                     seed=0)  # fmt: skip


@pytest.mark.parametrize(
    ("n_classes", "target_labeled"),
    [(2, 15), (3, 8)],  # rounds with 0 < eps_t < 1/2 and eps_t = 0 (2), eps_t > 1/2 (3)
)
def test_tradaboost_weights_follow_an_independent_loop(n_classes, target_labeled):
    # per round: the weights the learner gets, eps_t and beta_t; then the final vote. Fails on
    # a wrong update direction, beta, error normalisation or voting half (N odd: ceil(N/2))
    task = _boost_task(n_classes, target_labeled)
    fit = task.without_test()
    lab = fit.target.labeled()
    X, y, n, N = np.vstack([fit.source.X, lab.X]), np.r_[fit.source.y, lab.y], len(fit.source), 9
    _WeightSpy.seen.clear()
    m = TrAdaBoost(estimator=_WeightSpy(max_iter=2000), n_estimators=N).fit(fit)
    beta, rounds = _tradaboost_reference(X, y, n, N, lambda: LogisticRegression(max_iter=2000))
    assert m.beta_ == pytest.approx(beta, rel=1e-15)
    assert len(_WeightSpy.seen) == N
    for t, (seen, ref) in enumerate(zip(_WeightSpy.seen, rounds, strict=True)):
        np.testing.assert_allclose(seen, ref["weight"], rtol=1e-9, err_msg=f"round {t + 1}")
    np.testing.assert_allclose(m.target_errors_, [r["eps"] for r in rounds], atol=1e-12)
    np.testing.assert_allclose(m.betas_, [r["beta_t"] for r in rounds], rtol=1e-9)
    # the premise: the rounds really reweight (errors on both domains, 0 < eps_t < 1/2)
    assert any(0 < r["eps"] < 0.5 for r in rounds[1:])
    assert all(r["source_wrong"] > 0 for r in rounds)
    assert not np.allclose(rounds[-1]["weight"], 1.0)
    pred, share = _reference_vote(rounds, task.test.X, m.classes_)
    np.testing.assert_array_equal(m.predict(task.test.X), pred)
    np.testing.assert_allclose(m.predict_proba(task.test.X), share, rtol=1e-9)


def test_tradaboost_default_linear_svm_follows_the_independent_loop():
    # the default (precomputed Gram) path against the loop with SVC(kernel="linear")
    task = _boost_task(2, 15)
    fit = task.without_test()
    lab = fit.target.labeled()
    X, y, n, N = np.vstack([fit.source.X, lab.X]), np.r_[fit.source.y, lab.y], len(fit.source), 7
    m = TrAdaBoost(n_estimators=N, random_state=0).fit(fit)
    assert m.gram_
    _, rounds = _tradaboost_reference(
        X, y, n, N, lambda: SVC(kernel="linear", C=1.0, random_state=0)
    )
    np.testing.assert_allclose(m.target_errors_, [r["eps"] for r in rounds], atol=1e-9)
    np.testing.assert_allclose(m.betas_, [r["beta_t"] for r in rounds], rtol=1e-6)
    assert any(0 < r["eps"] < 0.5 for r in rounds)
    pred, share = _reference_vote(rounds, task.test.X, m.classes_)
    np.testing.assert_array_equal(m.predict(task.test.X), pred)
    np.testing.assert_allclose(m.predict_proba(task.test.X), share, rtol=1e-6)


# --------------------------------------------------------------------------- DAN


def _linear_mk_mmd_numpy(X, Y, multipliers, weights):
    """Gretton et al. (2012) linear-time MK-MMD², DAN's bandwidths, with explicit loops.

    gamma_u = 1 / (multiplier_u * median of the pooled squared distances, i < j);
    mean over i of sum_u beta_u [k(x_2i-1, x_2i) + k(y_2i-1, y_2i) - k(x_2i-1, y_2i)
    - k(x_2i, y_2i-1)] over the floor(min(n, m) / 2) disjoint quad-tuples.
    """
    Z = np.vstack([X, Y])
    D = cdist(Z, Z, "sqeuclidean")
    med = np.median(D[np.triu_indices(len(Z), 1)])
    gammas = [1 / (s * med) for s in multipliers]
    p = min(len(X), len(Y)) // 2
    total = 0.0
    for i in range(p):
        x1, x2, y1, y2 = X[2 * i], X[2 * i + 1], Y[2 * i], Y[2 * i + 1]
        for g, b in zip(gammas, weights, strict=True):

            def k(a, c, g=g):
                return math.exp(-g * float(np.sum((a - c) ** 2)))

            total += b * (k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1))
    return total / p


def _dan_batch(F):
    return Batch(features=F, logits=F[:, :2], layers={"features": F, "logits": F[:, :2]},
                 progress=1.0)  # fmt: skip


@pytest.mark.parametrize(("n", "m"), [(9, 6), (7, 7)])  # 105 and 91 pairs: an exact median
def test_dan_linear_time_mk_mmd_equals_the_direct_formula(n, m):
    # fails on a wrong pairing of the quad-tuples, a wrong cross term, the bandwidth base,
    # dropping/using the odd sample, or weights applied to the wrong kernels
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 4))
    Y = 1.3 * rng.normal(size=(m, 4)) + 0.4
    mult = [0.25, 1.0, 4.0]
    beta = [0.5, 0.2, 0.3]
    ref = _linear_mk_mmd_numpy(X, Y, mult, beta)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    est, h = per_kernel_mmd2(Xt, Yt, mult, "linear")
    assert h.shape == (3, min(n, m) // 2)
    for u in range(3):  # each kernel alone
        one = [1.0 if v == u else 0.0 for v in range(3)]
        assert float(est[u]) == pytest.approx(_linear_mk_mmd_numpy(X, Y, mult, one), rel=1e-12)
    assert float(mk_mmd2_pooled(Xt, Yt, mult, beta, "linear")) == pytest.approx(ref, rel=1e-12)
    dan = DAN(layers=["features"], bandwidth_multipliers=mult, kernel_weights=beta,
              anneal=False, mmd_weight=2.0)  # fmt: skip
    loss, _ = dan.transfer_loss(_dan_batch(Xt), _dan_batch(Yt))
    assert float(loss) == pytest.approx(2.0 * ref, rel=1e-12)
    assert abs(ref) > 1e-3  # a discrepancy large enough for the comparison to mean something
