"""Self-taught learning: sparse-coding bases learned on unlabeled data, a classifier on the codes.

Raina, Battle, Lee, Packer, Ng, "Self-taught Learning: Transfer Learning from Unlabeled Data",
ICML 2007, Algorithm 1. The unlabeled samples ``x_u`` need not share the labeled task's classes
or distribution. The method has three steps:

1. Learn bases ``b_1 .. b_s`` from the unlabeled samples (the paper's problem (1)):

       minimise_{b, a}  sum_i ||x_u^(i) - sum_j a_j^(i) b_j||^2 + beta ||a^(i)||_1
       subject to       ||b_j||_2 <= 1  for every j;

2. encode every labeled sample by its sparse activations with the bases held fixed,

       a_hat(x) = argmin_a ||x - sum_j a_j b_j||^2 + beta ||a||_1   (a lasso problem);

3. train a supervised classifier on ``(a_hat(x_l), y)`` for the labeled samples (the paper:
   an SVM or GDA), and classify a new sample ``x`` by ``a_hat(x)``.

In tlbench's task contract the unlabeled data are the source samples with their labels dropped
(``unlabeled="source"``, the default and the paper's setting: unlabeled data from another
distribution), and the labeled data are the few labeled target samples (``labeled="target"``,
the paper's). The bases come from :class:`sklearn.decomposition.MiniBatchDictionaryLearning`
(or :class:`~sklearn.decomposition.DictionaryLearning`, ``dictionary="batch"``), the codes from
:func:`sklearn.decomposition.sparse_encode`.

The scale of ``beta``: scikit-learn writes both problems as ``0.5 ||x - D^T a||^2 +
alpha_sk ||a||_1`` (``sparse_encode`` passes ``alpha_sk / n_features`` to ``Lasso`` /
``LassoLars``, whose squared loss is averaged over the ``n_features`` rows of the regression).
That is the paper's objective divided by 2, so ``alpha_sk = beta / 2``. This method's ``alpha``
*is* the paper's ``beta``; the codes satisfy the lasso optimality (KKT) conditions, with the
residual ``r = x - D^T a``,

    b_j . r = (beta / 2) sign(a_j)   where a_j != 0,
    |b_j . r| <= beta / 2            where a_j == 0,

up to the solver's accuracy: ``lasso="cd"`` stops at a duality gap of 1e-8 of the scaled
problem (KKT residuals below 1e-8 in the tests); ``lasso="lars"`` follows the homotopy path
(residuals up to ~1e-5 on a few samples, from its rounding).

Deviations from the paper
-------------------------
- The solver. The paper alternates feature-sign search (codes) and the Lagrange dual (bases)
  over the whole unlabeled set (Lee, Battle, Raina, Ng, NIPS 2006). tlbench uses scikit-learn's
  online dictionary learning by default (Mairal et al. 2009: mini-batches, lasso codes, block
  coordinate descent on the bases, early stopping on its default ``tol=1e-3`` /
  ``max_no_improvement=10``), or its batch alternation (``dictionary="batch"``). Same objective
  and constraint, a different local optimum. Lasso problems are solved by coordinate descent
  (``lasso="cd"``, the default: 20-25x faster than LARS on 256-dim digits with 512 bases) or by
  LARS (``lasso="lars"``, a homotopy method; feature-sign search is an active-set one).
  Coordinate descent can stop at its iteration cap before its tolerance;
  ``diagnostics_["convergence_warnings"]`` counts that.
- The classifier is ``estimator`` on the codes: ``linear_svm`` (libsvm, C = 1) by default, or
  ``logreg`` / ``knn1``. The paper also uses GDA, and derives a Fisher kernel of the sparse
  coding model for the SVM; neither is implemented.
- The number of bases. ``n_components=None`` (the default) takes twice the input dimension, at
  most :data:`MAX_DEFAULT_COMPONENTS` (512 on 256-dim digits and on 1280-dim CNN features).
  This is tlbench's rule; the paper sets it per domain.
- Preprocessing. ``normalize="l2"`` (the default) divides every sample (unlabeled, labeled,
  test alike) by its Euclidean norm before coding, so that ``beta`` means the same on any
  feature scale (on ``mnist_usps`` the adapter already does this, so it changes nothing there;
  on pooled CNN features it does). This is ours. The paper's image experiments code small
  patches (and pool their codes) and its other domains have their own input representations;
  tlbench codes each whole sample (a 16 x 16 digit, a pooled feature vector) and does no mean
  removal or whitening.
- ``unlabeled="target"`` (the target training samples, labels dropped: the semi-supervised
  setting) and ``unlabeled="both"`` (source + target) are not the paper's self-taught setting;
  nor is ``labeled="source_and_target"`` (the labeled source samples join the classifier's
  training set, which needs the source to share the target's classes).
- Input is dense: a sparse matrix is converted to a dense array (in row blocks for coding; in
  one piece for the unlabeled set the bases are learned on), and a conversion above
  :data:`MAX_DENSE_BYTES` is refused with a :class:`~tlbench.errors.ConfigError`.

Not a deviation: the learned bases are kept in an in-memory cache (:data:`MAX_CACHED`
entries), keyed by the unlabeled samples and every hyperparameter the bases depend on, so a
sweep over ``dataset.target_labeled`` in one process learns them once per source and seed
(``diagnostics_["dictionary_cached"]`` says when).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import DictionaryLearning, MiniBatchDictionaryLearning, sparse_encode
from sklearn.exceptions import ConvergenceWarning

from ...errors import ConfigError, DataError, IncompatibleTaskError
from ...registry import register_method
from ...task import TransferTask
from ..base import ESTIMATORS, ShallowMixin, TransferMethod, check_fitted

__all__ = ["SelfTaught"]

UNLABELED_SOURCES: tuple[str, ...] = ("source", "target", "both")
LABELED_SETS: tuple[str, ...] = ("target", "source_and_target")
NORMALIZATIONS: tuple[str, ...] = ("l2", "none")
DICTIONARIES: tuple[str, ...] = ("minibatch", "batch")
LASSO_SOLVERS: tuple[str, ...] = ("cd", "lars")

#: ``n_components=None``: twice the input dimension, at most this many bases.
MAX_DEFAULT_COMPONENTS = 512
#: Largest dense float64 array a sparse input is converted to (1 GiB).
MAX_DENSE_BYTES = 1 << 30
#: Rows coded (and densified) at a time.
ENCODE_BLOCK = 2048
#: Unlabeled samples coded, after the bases are learned, for the reconstruction diagnostics.
DIAGNOSTIC_SAMPLES = 1000
#: Learned bases kept in the in-memory cache (least recently used dropped first).
MAX_CACHED = 8
_CACHE: OrderedDict[str, dict[str, Any]] = OrderedDict()


def _check_int(name: str, value: Any, low: int) -> int:
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer | float)
    if not ok or not math.isfinite(value) or int(value) != value or value < low:
        raise ConfigError(f"self_taught: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(
            f"self_taught: unknown {name} {value!r}; choose one of {' | '.join(choices)}"
        )
    return value


def _dense(X: Any, what: str) -> np.ndarray:
    """``X`` as a 2-D float64 array; a sparse matrix is converted unless it would be too large."""
    if sp.issparse(X):
        n, d = X.shape
        if 8 * n * d > MAX_DENSE_BYTES:
            raise ConfigError(
                f"self_taught: the {what} ({n} x {d}, sparse) would need "
                f"{8 * n * d / 2**30:.1f} GiB as a dense array, above the "
                f"{MAX_DENSE_BYTES / 2**30:.0f} GiB limit; sparse coding here runs on dense "
                "arrays, so reduce the features first"
            )
        return np.asarray(X.toarray(), dtype=np.float64)
    if not isinstance(X, np.ndarray):
        raise DataError(f"self_taught: the {what} must be a numeric array, got {type(X).__name__}")
    return np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)


def _counting_convergence(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn``; return its result and how many ConvergenceWarnings it raised (not shown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    n = 0
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            n += 1
        else:  # any other warning is shown as usual
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out, n


def _reconstruction(
    X: np.ndarray, codes: np.ndarray, bases: np.ndarray, beta: float
) -> tuple[float, float, float]:
    """Relative squared reconstruction error, mean non-zeros per code, mean objective."""
    residual = X - codes @ bases
    sq = float(np.sum(residual**2))
    total = float(np.sum(X**2))
    objective = (sq + beta * float(np.abs(codes).sum())) / max(len(X), 1)
    nonzeros = float(np.mean(np.count_nonzero(codes, axis=1))) if len(X) else 0.0
    return (sq / total if total > 0 else 0.0), nonzeros, objective


@register_method("self_taught")
class SelfTaught(ShallowMixin, TransferMethod):
    """Self-taught learning (Raina et al., ICML 2007): a classifier on sparse codes.

    Parameters
    ----------
    n_components : int, optional
        Number of bases ``s`` (more than the input dimension is allowed: an overcomplete
        basis). ``None``: twice the input dimension, at most 512.
    alpha : float, default=0.2
        The sparsity penalty ``beta`` of the paper's objective ``||x - sum_j a_j b_j||^2 +
        beta ||a||_1`` (scikit-learn's ``alpha`` is ``beta / 2``; see the module docstring).
    unlabeled : {"source", "target", "both"}, default="source"
        Samples the bases are learned on, labels dropped: the source (the paper's self-taught
        setting), the target training samples (labeled ones included, as unlabeled), or both.
    labeled : {"target", "source_and_target"}, default="target"
        Samples the classifier is trained on: the labeled target samples (the paper's), or
        the labeled source samples with them.
    estimator : str or estimator, default="linear_svm"
        Classifier on the codes: ``linear_svm`` (the paper's SVM; libsvm, C = 1), ``logreg``,
        ``knn1`` or a scikit-learn classifier (cloned).
    normalize : {"l2", "none"}, default="l2"
        ``l2``: divide every sample by its Euclidean norm before coding (not in the paper).
    dictionary : {"minibatch", "batch"}, default="minibatch"
        ``minibatch``: :class:`~sklearn.decomposition.MiniBatchDictionaryLearning`;
        ``batch``: :class:`~sklearn.decomposition.DictionaryLearning` (slower).
    lasso : {"cd", "lars"}, default="cd"
        Solver of every lasso problem (codes while learning, and of the labeled and test
        samples): coordinate descent, or LARS (slower).
    max_iter : int, default=20
        ``minibatch``: epochs over the unlabeled samples at most (early stopping may end
        sooner); ``batch``: alternations at most.
    batch_size : int, default=256
        Samples per mini-batch (``minibatch`` only).
    random_state : int, optional
        Seed of the bases' initialisation, the mini-batch order, the diagnostic subsample and
        the classifier.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned bases ``b_j`` (rows, each of norm <= 1).
    n_features_in_ : int
        Input dimension.
    estimator_ : sklearn classifier
        The classifier fitted on the codes of the labeled samples.
    classes_ : ndarray
        Class labels.
    classifier_ : str
        The classifier's name, for the record.
    diagnostics_ : dict
        ``n_unlabeled``, ``n_train`` (samples the classifier saw), ``n_components``,
        ``dictionary_seconds`` (fit time of the bases, when they were learned; also reported
        on a cache hit), ``dictionary_cached``, ``dictionary_iterations`` / ``_steps``,
        ``reconstruction_error`` / ``nonzeros`` / ``objective`` (relative squared
        reconstruction error ``sum ||x - D^T a||^2 / sum ||x||^2``, mean non-zero activations
        per code, mean per-sample objective of the paper) on up to 1000 unlabeled samples and
        (suffix ``_train``) on the classifier's training samples, ``unused_bases`` (bases no
        diagnostic unlabeled code uses), ``convergence_warnings`` (lasso solves that stopped at
        their iteration cap, learning and coding), ``encode_seconds``.
    """

    family: ClassVar[str] = "feature"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = (
        "Raina, Battle, Lee, Packer, Ng. Self-taught Learning: Transfer Learning from "
        "Unlabeled Data. ICML 2007"
    )

    def __init__(
        self,
        *,
        n_components: int | None = None,
        alpha: float = 0.2,
        unlabeled: str = "source",
        labeled: str = "target",
        estimator: Any = "linear_svm",
        normalize: str = "l2",
        dictionary: str = "minibatch",
        lasso: str = "cd",
        max_iter: int = 20,
        batch_size: int = 256,
        random_state: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.unlabeled = unlabeled
        self.labeled = labeled
        self.estimator = estimator
        self.normalize = normalize
        self.dictionary = dictionary
        self.lasso = lasso
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state

    # ----------------------------------------------------------------------------- fit

    def _check_params(self) -> None:
        if self.n_components is not None:
            _check_int("n_components", self.n_components, 1)
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, int | float) or not (0 < a < math.inf):
            raise ConfigError(f"self_taught: alpha (beta) must be a finite number > 0, got {a!r}")
        _check_choice("unlabeled", self.unlabeled, UNLABELED_SOURCES)
        _check_choice("labeled", self.labeled, LABELED_SETS)
        _check_choice("normalize", self.normalize, NORMALIZATIONS)
        _check_choice("dictionary", self.dictionary, DICTIONARIES)
        _check_choice("lasso", self.lasso, LASSO_SOLVERS)
        _check_int("max_iter", self.max_iter, 1)
        _check_int("batch_size", self.batch_size, 1)
        if isinstance(self.estimator, str) and self.estimator not in ESTIMATORS:
            raise ConfigError(
                f"self_taught: unknown estimator {self.estimator!r}; choose one of "
                f"{' | '.join(ESTIMATORS)}"
            )

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        """The samples as coded: L2-normalised (``normalize="l2"``) or unchanged."""
        if self.normalize == "l2":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            X = X / np.where(norms > 0, norms, 1.0)
        return X

    def _unlabeled_samples(self, task: TransferTask) -> np.ndarray:
        parts = {"source": [task.source.X], "target": [task.target.X]}
        parts["both"] = parts["source"] + parts["target"]
        arrays = [_dense(X, f"unlabeled {self.unlabeled} samples") for X in parts[self.unlabeled]]
        return self._prepare(np.vstack(arrays) if len(arrays) > 1 else arrays[0])

    def _learn_bases(self, X: np.ndarray, n_components: int) -> dict[str, Any]:
        """The bases for the prepared samples ``X``, from the in-memory cache or learned now."""
        params = {
            "n_components": n_components,
            "alpha": float(self.alpha),
            "dictionary": self.dictionary,
            "lasso": self.lasso,
            "max_iter": int(self.max_iter),
            "batch_size": int(self.batch_size) if self.dictionary == "minibatch" else None,
            "random_state": self.random_state,
        }
        digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode())
        digest.update(str(X.shape).encode())
        digest.update(np.ascontiguousarray(X).tobytes())
        key = digest.hexdigest()
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return {**_CACHE[key], "cached": True}
        common = {
            "n_components": n_components,
            "alpha": float(self.alpha) / 2.0,  # scikit-learn's 0.5 ||x - D^T a||^2 + alpha ||a||_1
            "max_iter": int(self.max_iter),
            "fit_algorithm": self.lasso,
            "random_state": self.random_state,
        }
        if self.dictionary == "minibatch":
            learner = MiniBatchDictionaryLearning(batch_size=int(self.batch_size), **common)
        else:
            learner = DictionaryLearning(**common)
        t0 = time.perf_counter()
        _, warned = _counting_convergence(lambda: learner.fit(X))
        seconds = time.perf_counter() - t0
        bases = np.asarray(learner.components_, dtype=np.float64)
        # diagnostics on a seeded subsample of the unlabeled samples
        rng = np.random.default_rng(self.random_state)
        n_diag = min(len(X), DIAGNOSTIC_SAMPLES)
        sample = X[np.sort(rng.choice(len(X), n_diag, replace=False))]
        codes, warned_codes = self._encode(sample, bases)
        error, nonzeros, objective = _reconstruction(sample, codes, bases, float(self.alpha))
        entry = {
            "bases": bases,
            "seconds": seconds,
            "iterations": int(getattr(learner, "n_iter_", 0)),
            "steps": int(getattr(learner, "n_steps_", 0)) or None,
            "reconstruction_error": error,
            "nonzeros": nonzeros,
            "objective": objective,
            "unused_bases": int(np.sum(~np.any(codes != 0, axis=0))),
            "convergence_warnings": warned + warned_codes,
        }
        _CACHE[key] = entry
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)
        return {**entry, "cached": False}

    def _encode(self, X: np.ndarray, bases: np.ndarray) -> tuple[np.ndarray, int]:
        """Lasso codes ``a_hat(x)`` of prepared samples, and the count of unconverged solves."""
        return _counting_convergence(
            lambda: sparse_encode(
                X, bases, algorithm=f"lasso_{self.lasso}", alpha=float(self.alpha) / 2.0
            )
        )

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Learn the bases on the unlabeled samples, then the classifier on the labeled codes.

        Parameters
        ----------
        task : TransferTask
            A tabular task whose target has labeled samples.
        trainer : Trainer, optional
            Ignored (a shallow method).

        Returns
        -------
        self
        """
        self._check_params()
        self.check_task(task)
        labeled = task.target.labeled()
        X_train, y_train = labeled.X, labeled.y
        if self.labeled == "source_and_target":
            stack = sp.vstack if sp.issparse(task.source.X) or sp.issparse(X_train) else np.vstack
            X_train = stack([task.source.X, X_train])
            y_train = np.concatenate([task.source.y, y_train])
        if len(np.unique(y_train)) < 2:
            raise IncompatibleTaskError(
                "self_taught needs training labels of two classes (raise dataset.target_labeled)"
            )
        X_unlabeled = self._unlabeled_samples(task)
        d = X_unlabeled.shape[1]
        n_components = (
            min(2 * d, MAX_DEFAULT_COMPONENTS)
            if self.n_components is None
            else int(self.n_components)
        )
        bases = self._learn_bases(X_unlabeled, n_components)
        self.components_ = bases["bases"]
        self.n_features_in_ = d
        t0 = time.perf_counter()
        X_train = self._prepare(self._check_width(_dense(X_train, "labeled samples")))
        codes, warned = self._encode(X_train, self.components_)
        encode_seconds = time.perf_counter() - t0
        self._fit_estimator(codes, y_train)
        error, nonzeros, objective = _reconstruction(
            X_train, codes, self.components_, float(self.alpha)
        )
        self.diagnostics_ = {
            "unlabeled": self.unlabeled,
            "labeled": self.labeled,
            "n_unlabeled": int(len(X_unlabeled)),
            "n_train": int(len(y_train)),
            "n_components": n_components,
            "beta": float(self.alpha),
            "sklearn_alpha": float(self.alpha) / 2.0,
            "dictionary": self.dictionary,
            "lasso": self.lasso,
            "dictionary_seconds": bases["seconds"],
            "dictionary_cached": bases["cached"],
            "dictionary_iterations": bases["iterations"],
            "dictionary_steps": bases["steps"],
            "reconstruction_error": bases["reconstruction_error"],
            "nonzeros": bases["nonzeros"],
            "objective": bases["objective"],
            "unused_bases": bases["unused_bases"],
            "reconstruction_error_train": error,
            "nonzeros_train": nonzeros,
            "objective_train": objective,
            "convergence_warnings": bases["convergence_warnings"] + warned,
            "encode_seconds": encode_seconds,
        }
        return self

    # ------------------------------------------------------------------------- predict

    def _check_width(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"self_taught: X has {X.shape[1]} features; the bases have {self.n_features_in_}"
            )
        return X

    def transform(self, X: Any) -> np.ndarray:
        """The sparse codes ``a_hat(x)`` of samples ``X`` under the learned bases.

        Parameters
        ----------
        X : array or sparse matrix of shape (n, n_features)
            Samples (densified in blocks of :data:`ENCODE_BLOCK` rows).

        Returns
        -------
        codes : ndarray of shape (n, n_components)
        """
        check_fitted(self, "components_")
        blocks = [np.zeros((0, self.components_.shape[0]))]
        for start in range(0, X.shape[0], ENCODE_BLOCK):
            block = _dense(X[start : start + ENCODE_BLOCK], "samples to code")
            codes, _ = self._encode(self._prepare(self._check_width(block)), self.components_)
            blocks.append(codes)
        return np.vstack(blocks)

    def _features(self, X: Any) -> np.ndarray:
        return self.transform(X)
