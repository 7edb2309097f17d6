"""The relational learner: weighted clauses, a logistic model of the target atom given its world.

A model is a set of first-order clauses (relational paths, :mod:`.clauses`) with weights:
``P(t(a) = 1 | world) = sigmoid(b + sum_k w_k f_k(a))`` where ``f_k(a)`` is 1 when clause ``k``
has a grounding for atom ``a``. This is the conditional of a Markov logic network's target atom
given its Markov blanket when no clause contains the target twice (Richardson & Domingos,
"Markov logic networks", Machine Learning 62, 2006), so maximising the log-likelihood of the
examples is maximising the MLN's pseudo-likelihood of the target predicate; the features are
the path-constrained features of Lao & Cohen (Machine Learning 81, 2010).

Structure learning: enumerate every type-consistent clause up to a path length, fit an
L2-regularised logistic model on all of them, keep the ``max_clauses`` with the largest
``|w_k| * std(f_k)``, refit on those. Recursive clauses (``t(X, Y) <- path(X, Z), t(Z, Y)``, as
BoostSRL's ``recursion=true`` and relational dependency networks, Neville & Jensen, JMLR 8, 2007)
read the other training labels when learning; at prediction time they read the training
positives and the model's own probabilities for the atoms being predicted, refined by
iterative classification.

Deviations from the papers
--------------------------
- Structure search is enumeration plus weight-magnitude pruning, not the top-down clause search
  of Alchemy or BoostSRL's boosted trees; clause bodies are paths (with one unary test at the
  end), so conjunctions of branches are expressed only additively through the weights.
- Existential (0/1) features instead of MLN grounding counts: counts differ across domains by
  orders of magnitude, which a transferred weight cannot absorb. Recursive clauses combine
  uncertain atoms by noisy-or.
- Inference is iterative classification (5 rounds), not Gibbs sampling or MC-SAT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_limits

from ...errors import DataError, IncompatibleTaskError
from ...registry import register_method
from ...task import RelationalData, TransferTask
from ..base import TransferMethod, check_fitted
from .clauses import RECURSIVE, Clause, World, enumerate_clauses


def fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    *,
    C: float | np.ndarray = 1.0,
    prior: np.ndarray | None = None,
    bias: float = 0.0,
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression with an optional Gaussian prior mean on the weights.

    Minimises ``sum_i log(1 + exp(-s_i z_i)) + sum_k (w_k - prior_k)^2 / (2 C_k)`` with
    ``z = X w + b`` and ``s = 2y - 1`` (the bias is not penalised), by L-BFGS.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Features.
    y : ndarray of int
        0/1 labels.
    C : float or ndarray of shape (d,)
        Inverse regularisation strength (scikit-learn's ``C``), per weight if an array.
    prior : ndarray of shape (d,), optional
        The weights' prior mean (default 0): revision pulls re-learned weights toward the
        transferred ones.
    bias : float
        Starting bias.

    Returns
    -------
    w : ndarray of shape (d,)
    b : float
    """
    n, d = X.shape
    s = 2.0 * np.asarray(y, dtype=float) - 1.0
    w0 = np.zeros(d) if prior is None else np.asarray(prior, dtype=float)
    inv_c = 1.0 / np.broadcast_to(np.asarray(C, dtype=float), (d,))

    def loss(theta):
        w, b = theta[:d], theta[d]
        z = X @ w + b
        g = -s * expit(-s * z)  # d loss_i / d z_i
        diff = w - w0
        value = -np.sum(log_expit(s * z)) + 0.5 * np.sum(inv_c * diff**2)
        return value, np.r_[X.T @ g + inv_c * diff, g.sum()]

    start = np.r_[w0, bias]
    # One BLAS thread: L-BFGS-B's small vector operations spend most of their time waiting
    # for a second thread on a busy machine (10x slower measured on 2 shared cores).
    with threadpool_limits(1):
        res = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[:d], float(res.x[d])


def fit_bias(z: np.ndarray, y: np.ndarray, iters: int = 30) -> float:
    """The bias ``b`` maximising the likelihood of ``sigmoid(z + b)`` (1-D Newton)."""
    s = 2.0 * np.asarray(y, dtype=float) - 1.0
    b = 0.0
    for _ in range(iters):
        p = expit(z + b)
        grad = np.sum((s > 0) - p)
        hess = np.sum(p * (1 - p)) + 1e-9
        step = np.clip(grad / hess, -5.0, 5.0)  # damped: a flat likelihood must not explode
        b += step
        if abs(step) < 1e-8:
            break
    return float(b)


def log_likelihood(z: np.ndarray, y: np.ndarray) -> float:
    """Mean conditional log-likelihood of labels ``y`` under ``sigmoid(z)``."""
    s = 2.0 * np.asarray(y, dtype=float) - 1.0
    return float(np.mean(log_expit(s * z)))


@dataclass
class ClauseModel:
    """Weighted clauses for one target predicate."""

    target: str
    arity: int
    clauses: list[Clause]
    weights: np.ndarray
    bias: float
    info: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[tuple[str, ...], ...] = ()  # known true target atoms (training positives)

    def logits(self, world: World, idx: np.ndarray) -> np.ndarray:
        """``b + sum_k w_k f_k`` for the examples at ``idx``."""
        if not self.clauses:
            return np.full(len(idx), self.bias)
        return world.features(self.clauses, idx) @ self.weights + self.bias

    def predict_logits(self, data: RelationalData, n_iter: int = 5) -> np.ndarray:
        """Logits of ``data.examples``; recursive clauses by iterative classification.

        The training positives are evidence; the atoms being predicted start false and are
        replaced by the model's own probabilities ``n_iter`` times (Neville & Jensen's
        iterative classification, the inference of relational dependency networks without
        sampling).
        """
        world = World(data, evidence=self.evidence)
        idx = world.example_index(data.examples, data.target)
        if not self.clauses:
            return np.full(len(idx), self.bias)
        X = world.features(self.clauses, idx)
        z = X @ self.weights + self.bias
        rec = [k for k, c in enumerate(self.clauses) if c.anchor == RECURSIVE]
        for _ in range(n_iter if rec else 0):
            world.set_values(expit(z))
            for k in rec:
                X[:, k] = world.evaluate(self.clauses[k], idx)
            z = X @ self.weights + self.bias
        return z

    def describe(self) -> list[str]:
        """The clauses as text with their weights, largest first."""
        order = np.argsort(-np.abs(self.weights), kind="stable")
        return [
            f"{self.weights[k]:+.3f}  {self.clauses[k].describe(self.target, self.arity)}"
            for k in order
        ]


def check_examples(data: RelationalData, y: np.ndarray | None, role: str) -> None:
    """Refuse labels a learner cannot use, naming the predicate."""
    if y is None or len(y) == 0:
        raise IncompatibleTaskError(f"the {role} domain has no labeled examples of {data.target!r}")
    if not np.any(y == 1):
        raise DataError(f"the {role} target predicate {data.target!r} has no positive example")
    if not np.any(y == 0):
        raise DataError(f"the {role} target predicate {data.target!r} has no negative example")


def select_and_fit(
    X: np.ndarray,
    y: np.ndarray,
    max_clauses: int,
    C: float | np.ndarray,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit on all columns, keep the ``max_clauses`` largest ``|w| * std``, refit on those.

    Returns the kept column indices (sorted), their weights and the bias.
    """
    d = X.shape[1]
    C = np.broadcast_to(np.asarray(C, dtype=float), (d,))
    prior = np.zeros(d) if prior is None else prior
    informative = np.flatnonzero(X.std(axis=0) > 0)
    if len(informative) == 0:
        return informative, np.zeros(0), fit_bias(np.zeros(len(y)), y)
    Xi = X[:, informative]
    w, b = fit_logistic(Xi, y, C=C[informative], prior=prior[informative])
    importance = np.abs(w) * Xi.std(axis=0)
    keep = informative[np.sort(np.argsort(-importance, kind="stable")[:max_clauses])]
    w, b = fit_logistic(X[:, keep], y, C=C[keep], prior=prior[keep], bias=b)
    return keep, w, b


def learn_model(
    data: RelationalData,
    y: np.ndarray,
    *,
    max_chain_len: int,
    max_node_len: int,
    max_clauses: int,
    C: float,
    recursive: bool = True,
    max_constants: int = 200,
    max_recursive_len: int = 2,
) -> ClauseModel:
    """Learn weighted clauses for ``data.target`` from scratch."""
    y = np.asarray(y)
    world = World(data, values=y)  # recursive clauses read the other examples' labels
    idx = world.example_index(data.examples, data.target)
    candidates = enumerate_clauses(
        data.predicates,
        data.target,
        max_chain_len=max_chain_len,
        max_node_len=max_node_len,
        recursive=recursive,
        constants=example_constants(data, max_constants, y),
        max_recursive_len=max_recursive_len,
    )
    X = world.features(candidates, idx)
    keep, w, b = select_and_fit(X, y, max_clauses, C)
    return ClauseModel(
        target=data.target,
        arity=len(data.predicates[data.target]),
        clauses=[candidates[k] for k in keep],
        weights=w,
        bias=b,
        info={"n_candidates": len(candidates)},
        evidence=positives(data, y),
    )


def positives(data: RelationalData, y: np.ndarray) -> tuple[tuple[str, ...], ...]:
    """The examples labeled true."""
    return tuple(ex for ex, label in zip(data.examples, y, strict=True) if label == 1)


def value_arg_types(data: RelationalData) -> set[str]:
    """Types of the target's arguments that no other predicate uses (its *value arguments*).

    Nothing relates such a constant (Yeast's protein class, Twitter's account type) to
    anything but the examples, so its name is all a test can read. RDN-Boost's recursion
    facts (``recursion_<target>``) copy the target's types and do not count as another
    predicate.
    """
    own = {data.target, "recursion_" + data.target}
    elsewhere = {t for p, ts in data.predicates.items() if p not in own for t in ts}
    return {t for t in data.predicates[data.target] if t not in elsewhere}


def example_constants(
    data: RelationalData, max_constants: int, y: np.ndarray | None = None
) -> dict[int, list[str]]:
    """Constants of the target's value arguments, to test the argument against.

    A value argument has a type that no other predicate uses (Twitter's account type, Yeast's
    protein class) and at most ``max_constants`` constants in the examples: nothing relates its
    constants but their names, and without these clauses every value of it looks the same.
    With the labels ``y`` the constants are read from the positive examples only: a generated
    negative is not evidence of what a type holds (the recorded TreeBoostler runs' negatives
    put proteins in the class argument, ``proteinclass(p1, p2)``, as
    :func:`~.rdn_boost.value_types` explains).
    """
    value_args = value_arg_types(data)
    examples = data.examples if y is None else positives(data, y)
    out = {}
    for i, typ in enumerate(data.predicates[data.target]):
        values = sorted({ex[i] for ex in examples})
        if typ in value_args and len(values) <= max_constants:
            out[i] = values
    return out


def check_hyperparameters(method: Any) -> None:
    """Validate the learner's hyperparameters (shared by the relational methods)."""
    from ...errors import ConfigError

    for key in ("max_chain_len", "max_node_len", "max_recursive_len"):
        if not 0 <= getattr(method, key) <= 4:
            raise ConfigError(f"method.{key} must be in 0..4, got {getattr(method, key)}")
    if method.max_clauses < 1:
        raise ConfigError(f"method.max_clauses must be >= 1, got {method.max_clauses}")
    if method.C <= 0:
        raise ConfigError(f"method.C must be > 0, got {method.C}")


class RelationalClassifierMixin:
    """``predict_proba`` / ``predict`` of a fitted ``model_`` on a :class:`RelationalData`."""

    def predict_proba(self, X: RelationalData) -> np.ndarray:
        """Probabilities ``(n, 2)`` of each example atom being false / true."""
        check_fitted(self, "model_")
        if not isinstance(X, RelationalData):
            raise DataError("a relational method predicts on RelationalData")
        if X.target != self.target_predicate_:
            raise DataError(
                f"the model predicts {self.target_predicate_!r}, the examples are of {X.target!r}"
            )
        p = expit(self.model_.predict_logits(self._target_view(X)))
        return np.column_stack([1.0 - p, p])

    def _target_view(self, X: RelationalData) -> RelationalData:
        """The target data as the model reads it (a mapping to inverse predicates adds them)."""
        return X

    def predict(self, X: RelationalData) -> np.ndarray:
        """1 where the atom is more likely true than false."""
        check_fitted(self, "model_")
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)


@register_method("relational_scratch")
class RelationalScratch(RelationalClassifierMixin, TransferMethod):
    """No transfer: the clause learner trained on the labeled target examples only.

    Parameters
    ----------
    max_chain_len : int, default=2
        Longest chain clause between the target's two arguments.
    max_node_len : int, default=2
        Longest path of a clause hanging from one target argument.
    max_clauses : int, default=20
        Clauses kept in the model.
    C : float, default=1.0
        Inverse L2 strength of the logistic weights.
    recursive : bool, default=True
        Also consider ``t(X, Y) <- r(X, Z), t(Z, Y)`` (other atoms of the target predicate;
        predicted by iterative classification at test time).
    max_recursive_len : int, default=2
        Longest path ``path(X, Z)`` of a recursive clause.
    max_constants : int, default=200
        A value argument of the target (a type no other predicate uses) whose examples use at
        most this many constants gets one clause per constant (``accounttype(A, fan)``).

    Attributes
    ----------
    model_ : ClauseModel
        The learned clauses and weights.
    target_predicate_ : str
        The predicate it predicts.
    diagnostics_ : dict
        The clauses as text, for the result record.
    """

    family: ClassVar[str] = "relational"
    final_classifier: ClassVar[str] = "weighted clauses"
    supports: ClassVar[frozenset[str]] = frozenset({"relational"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = "no transfer: weighted first-order clauses learned on the target alone"

    def __init__(
        self,
        *,
        max_chain_len: int = 2,
        max_node_len: int = 2,
        max_clauses: int = 20,
        C: float = 1.0,
        recursive: bool = True,
        max_constants: int = 200,
        max_recursive_len: int = 2,
    ) -> None:
        self.max_chain_len = max_chain_len
        self.max_node_len = max_node_len
        self.max_clauses = max_clauses
        self.C = C
        self.recursive = recursive
        self.max_constants = max_constants
        self.max_recursive_len = max_recursive_len

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Learn clauses on the labeled target training examples."""
        self.check_task(task)
        check_hyperparameters(self)
        target = task.target.labeled()
        check_examples(target.X, target.y, "target")
        self.model_ = learn_model(
            target.X,
            target.y,
            max_chain_len=self.max_chain_len,
            max_node_len=self.max_node_len,
            max_clauses=self.max_clauses,
            C=self.C,
            recursive=self.recursive,
            max_constants=self.max_constants,
            max_recursive_len=self.max_recursive_len,
        )
        self.target_predicate_ = target.X.target
        self.classes_ = np.array([0, 1])
        self.diagnostics_ = {"clauses": self.model_.describe(), **self.model_.info}
        return self
