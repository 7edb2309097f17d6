"""Model selection protocols: how a run scores itself so a sweep can pick a configuration.

Every run records ``selection`` (its protocol's name), ``selection_score`` (higher is better)
and ``selection_scores``, the scores of every protocol (one held-out source fit serves them
all). ``python -m tlbench.report`` then picks, per task, seed and row label, the
configuration with the best score among the runs of a hyperparameter sweep; with
``--selection all`` it shows the protocols side by side. Protocols
(``conf/selection/<name>.yaml``):

``source_val`` (default)
    Accuracy on held-out labeled source samples (``val_fraction``, stratified, seeded by the
    run's seed so every method sees the same split). The scoring model is fitted without those
    samples; the reported model is refitted on all of them (scikit-learn's ``refit=True``).
``iwv``
    Importance-weighted validation (Sugiyama, Krauledat, Müller, JMLR 2007): the same held-out
    source samples, each weighted by ``p_target(x) / p_source(x)`` estimated on the input
    features by ``selection.density_ratio`` (:mod:`tlbench.density_ratio`): ``logistic``, a
    logistic domain classifier (the default), ``kliep`` or ``ulsif``, the estimators of the
    ``kliep`` and ``ulsif`` methods.
``dev``
    Deep embedded validation (You, Wang, Long, Jordan, ICML 2019): the importance-weighted
    0/1 loss with the control variate that lowers its variance, ``risk = mean(w l) +
    eta mean(w) - eta`` with ``eta = -Cov(w l, w) / Var(w)``. Deviation: the density ratio is
    estimated on input features, not on the network's embedding, so it also serves shallow
    methods.
``reverse``
    Reverse validation (Zhong, Fan, Yang, Verscheure, Ren, ECML PKDD 2010), the protocol of the
    DANN paper (Ganin et al., JMLR 2016, Section 5.1.2): the model fitted without the held-out
    source samples labels the target training samples; a fresh copy of the method is fitted on
    that pseudo-labeled target as its source, with the remaining source samples, unlabeled, as
    its target; its accuracy on the held-out source samples is the score. It costs one more
    fit, so it is computed only for runs whose protocol it is. Deviation: the paper also splits
    the target for early stopping; here every fit keeps its last step.
``entropy``
    Minus the mean prediction entropy on the unlabeled target training samples (needs
    ``predict_proba``). Unsupervised and cheap, known to reward collapsed predictions.
``oracle``
    Accuracy on the labeled target test set. Not a protocol a deployed method can use: every
    table that contains it says "oracle".
``none``
    No score (single runs that select nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .errors import ConfigError, DataError, IncompatibleTaskError, NotScorableError
from .task import UNLABELED, Domain, TransferTask

log = logging.getLogger(__name__)

PROTOCOLS = ("source_val", "iwv", "dev", "reverse", "entropy", "oracle", "none")
NEEDS_VALIDATION = ("source_val", "iwv", "dev", "reverse")


def check_val_fraction(val_fraction: Any) -> None:
    """``selection.val_fraction`` is a number in (0, 1), else one :class:`ConfigError`."""
    ok = isinstance(val_fraction, int | float) and not isinstance(val_fraction, bool)
    if not ok or not 0 < val_fraction < 1:
        raise ConfigError(f"selection.val_fraction must be in (0, 1), got {val_fraction!r}")


def split_source(task: TransferTask, val_fraction: float, seed: int) -> tuple[Domain, Domain]:
    """Stratified ``(train, val)`` parts of the labeled source, seeded by ``seed``."""
    from .datasets.common import _stratified_sample

    check_val_fraction(val_fraction)
    y = task.source.y
    classes, counts = np.unique(y, return_counts=True)
    if (counts < 2).any():
        small = ", ".join(str(c) for c in classes[counts < 2])
        raise NotScorableError(
            f"class {small} has one labeled source sample: it cannot be held out and trained on"
        )
    val = _stratified_sample(y, round(val_fraction * len(y)), np.random.default_rng([seed, 7]))
    train = np.setdiff1d(np.arange(len(y)), val)
    return task.source.subset(train), task.source.subset(val)


def check_density_ratio(name: Any) -> None:
    """``selection.density_ratio`` names an estimator of :mod:`tlbench.density_ratio`."""
    from .density_ratio import ESTIMATORS

    if name not in ESTIMATORS:
        raise ConfigError(
            f"selection.density_ratio must be one of {', '.join(ESTIMATORS)}, got {name!r}"
        )


def density_ratio(
    X_source: Any, X_target: Any, seed: int = 0, estimator: str = "logistic"
) -> Callable[[Any], np.ndarray]:
    """``x -> p_target(x) / p_source(x)``, fitted by the estimator ``estimator``.

    ``logistic`` (default): a logistic domain classifier (Bickel et al. 2007) whose odds
    ``P(target | x) / P(source | x)`` are rescaled by ``n_source / n_target``, so that the
    ratio averages to about 1 on source samples, and clipped to [1e-3, 1e3], so that one sample
    far outside the source cannot take all the weight. ``kliep`` / ``ulsif``: the Gaussian-basis
    estimators of the ``kliep`` / ``ulsif`` methods, with their own cross-validation. All of
    them live in :mod:`tlbench.density_ratio`; the fitted estimator is returned (call it).
    """
    from .density_ratio import make_ratio_estimator

    check_density_ratio(estimator)
    return make_ratio_estimator(estimator, random_state=seed).fit(X_source, X_target)


def iwv_score(correct: np.ndarray, weight: np.ndarray) -> float:
    """Importance-weighted accuracy ``sum(w * correct) / sum(w)``."""
    return float(np.sum(weight * correct) / np.sum(weight))


def dev_score(correct: np.ndarray, weight: np.ndarray) -> float:
    """Minus the DEV risk of the 0/1 loss (You et al. 2019, Algorithm 1), so higher is better."""
    loss = 1.0 - correct.astype(np.float64)
    wl = weight * loss
    var = np.var(weight, ddof=1) if len(weight) > 1 else 0.0
    eta = 0.0 if var == 0 else -np.cov(wl, weight, ddof=1)[0, 1] / var
    risk = wl.mean() + eta * weight.mean() - eta
    return float(-risk)


def entropy_score(proba: np.ndarray) -> float:
    """Minus the mean Shannon entropy (nats) of predicted class probabilities."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    return float(np.mean(np.sum(p * np.log(p), axis=1)))


def score_all(
    name: str,
    *,
    task: TransferTask,
    method: Any,
    make_method: Callable[[], Any],
    trainer: Any,
    test_accuracy: float,
    val_fraction: float,
    seed: int,
    heldout: tuple[Domain, Domain] | None = None,
    density_ratio: str = "logistic",
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Every protocol's score of a fitted run (``name`` is the run's own protocol).

    One held-out source fit serves ``source_val``, ``iwv`` and ``dev`` together, so the report
    can put the protocols side by side (``python -m tlbench.report --selection all``) without
    running the sweep once per protocol. ``reverse`` needs a further fit (the reverse model), so
    it is scored only when it is ``name``. With ``name="none"`` nothing is scored.

    Parameters
    ----------
    name : str
        The run's protocol, one of :data:`PROTOCOLS`.
    task : TransferTask
        The task *with* its test set (only ``oracle`` reads the test labels, through
        ``test_accuracy``).
    method : TransferMethod
        The method fitted on the whole training task.
    make_method : callable
        Builds a fresh, unfitted copy of the method (for the held-out source fit).
    trainer : Trainer or None
        The run's trainer; the extra fit gets :meth:`~tlbench.trainer.Trainer.isolated`'s
        copy of it (no checkpoints, no resume).
    test_accuracy : float
        Accuracy of ``method`` on the test set (the oracle score).
    val_fraction : float
        Held-out source fraction for ``source_val``, ``iwv`` and ``dev``.
    seed : int
        The run's seed.
    heldout : tuple of Domain, optional
        ``(train, val)``: ``method`` was fitted with ``val`` held out of the source (the
        runner's one training of a deep method); it is scored on ``val`` and nothing is
        trained again.
    density_ratio : {"logistic", "kliep", "ulsif"}, default="logistic"
        The estimator of ``iwv`` and ``dev``'s importance weights (:func:`density_ratio`).

    Returns
    -------
    scores : dict
        Protocol name -> score (higher is better), ``None`` where a protocol cannot score
        this run.
    info : dict
        What the record keeps about the scoring.
    """
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown selection {name!r}; choose one of {', '.join(PROTOCOLS)}")
    check_density_ratio(density_ratio)
    scores: dict[str, float | None] = {}
    info: dict[str, Any] = {}
    if name == "none":
        return scores, info
    scores["oracle"] = test_accuracy
    scores["entropy"] = None
    if hasattr(method, "predict_proba"):
        try:
            scores["entropy"] = entropy_score(method.predict_proba(task.target.X))
        except AttributeError as exc:  # e.g. an estimator without probabilities
            info["entropy"] = str(exc)
    own = getattr(method, "selection_score_", None)
    if heldout is not None:
        train, val = heldout
        info["trained_once"] = True
        _score_split(name, scores, info, task, method, train, val, seed, density_ratio,
                     make_method, trainer)  # fmt: skip
        return scores, info
    if own is not None:
        # a method that held data out itself (e.g. a deep method choosing its checkpoint)
        # reports that score; no second training run. name None: the method cannot be
        # scored on held-out source data (e.g. it trains on the labeled target).
        if own.get("name"):
            scores[own["name"]] = float(own["score"])
        for p in NEEDS_VALIDATION:
            scores.setdefault(p, None)
        info["by_method"] = own.get("name") or own.get("note")
        return scores, info
    if task.kind == "relational":
        # a mapped relational model predicts target predicates: held-out source examples
        # cannot score it, and there are no feature vectors for a density ratio
        for p in NEEDS_VALIDATION:
            scores.setdefault(p, None)
        info["note"] = "relational: source_val, iwv, dev and reverse do not apply"
        return scores, info
    train, val = split_source(task, val_fraction, seed)
    try:
        scorer = make_method().fit(replace(task, source=train, test=None), _isolated(trainer))
    except (ConfigError, DataError) as exc:
        # the main fit took this config and data: only the smaller held-out task can fail it
        # (e.g. more components than samples), so the run stands, unscored, and says why
        raise NotScorableError(
            f"the held-out fit on {len(train)} of the {len(task.source)} source samples "
            f"failed: {exc}"
        ) from exc
    info["val_fraction"] = val_fraction
    _score_split(name, scores, info, task, scorer, train, val, seed, density_ratio,
                 make_method, trainer)  # fmt: skip
    return scores, info


def _isolated(trainer: Any) -> Any:
    """The trainer for an extra fit: its own state, never the run's checkpoints or resume."""
    isolated = getattr(trainer, "isolated", None)
    return trainer if isolated is None else isolated()


def _score_split(name: str, scores: dict, info: dict, task: TransferTask, scorer: Any,
                 train: Domain, val: Domain, seed: int, estimator: str,
                 make_method: Callable[[], Any], trainer: Any) -> None:  # fmt: skip
    """The held-out scores of ``scorer``, and ``reverse`` when it is the run's protocol."""
    _score_heldout(scores, info, task, scorer, train, val, seed, estimator)
    if name == "reverse":
        _score_reverse(scores, info, task, scorer, train, val, make_method, trainer)


def _is_vectors(X: Any) -> bool:
    import scipy.sparse as sp

    return sp.issparse(X) or isinstance(X, np.ndarray)


def _score_heldout(scores: dict, info: dict, task: TransferTask, scorer: Any, train: Domain,
                   val: Domain, seed: int, estimator: str = "logistic") -> None:  # fmt: skip
    """``source_val``, ``iwv`` and ``dev`` of ``scorer`` (fitted without ``val``) on ``val``.

    The density ratio is estimated on the input vectors; for images, on the scorer's own
    embedding (``embed``: a deep method's backbone features, as DEV prescribes), and without
    one the importance-weighted protocols do not score.
    """
    # held-out *source* samples: a method that maps the domains differently maps them as source
    predict = getattr(scorer, "predict_source", scorer.predict)
    correct = (predict(val.X) == val.y).astype(np.float64)
    info["n_val"] = len(val)
    scores.setdefault("source_val", float(correct.mean()))
    Xs, Xt, Xv = train.X, task.target.X, val.X
    if not all(_is_vectors(X) for X in (Xs, Xt, Xv)):
        if not hasattr(scorer, "embed"):
            scores.setdefault("iwv", None)
            scores.setdefault("dev", None)
            info["note"] = "iwv and dev need feature vectors: this method has no embedding"
            return
        Xs, Xt, Xv = scorer.embed(Xs), scorer.embed(Xt), scorer.embed(Xv)
        info["density_ratio_on"] = "the method's embedding"
    weight = density_ratio(Xs, Xt, seed, estimator)(Xv)
    info["density_ratio"] = estimator
    info["weight_max"] = float(weight.max())
    info["weight_ess"] = float(weight.sum() ** 2 / np.sum(weight**2))
    scores.setdefault("iwv", iwv_score(correct, weight))
    scores.setdefault("dev", dev_score(correct, weight))


def _score_reverse(scores: dict, info: dict, task: TransferTask, scorer: Any, train: Domain,
                   val: Domain, make_method: Callable[[], Any], trainer: Any) -> None:  # fmt: skip
    """``reverse``: the reverse model's accuracy on ``val`` (Zhong et al. 2010).

    ``scorer`` was fitted without ``val``; its predictions label the target training samples
    (a target label given to the method is kept), and a fresh method learns from them with
    ``train``'s samples, unlabeled, as its target. ``val`` is never trained on by either fit.
    """
    pseudo = np.asarray(scorer.predict(task.target.X), dtype=np.int64)
    y_target = task.target.y
    if y_target is not None:  # partly labeled target: its given labels stay
        known = y_target != UNLABELED
        pseudo = np.where(known, y_target, pseudo)
    counts = np.bincount(pseudo, minlength=task.num_classes)
    info["reverse_pseudo_label_counts"] = counts.tolist()
    reverse_task = replace(
        task,
        source=Domain(X=task.target.X, y=pseudo, name=f"{task.target.name} (pseudo-labeled)"),
        target=Domain(X=train.X, name=train.name),
        test=None,
        protocol="transductive",
    )
    try:
        reverse = make_method()
        check = getattr(reverse, "check_sources", None)
        if check is not None:
            check(reverse_task)
        reverse.fit(reverse_task, _isolated(trainer))
    except (ConfigError, DataError, IncompatibleTaskError) as exc:
        scores["reverse"] = None
        info["reverse"] = f"not scored: the reverse fit failed: {exc}"
        return
    correct = reverse.predict(val.X) == val.y
    scores["reverse"] = float(np.mean(correct))
