"""Relational transfer by predicate mapping and revision.

Learn weighted clauses on the source domain; map the source predicates to target predicates;
re-learn on the target. This is the scheme of TAMAR (Mihalkova, Huynh, Mooney, "Mapping and
Revising Markov Logic Networks for Transfer Learning", AAAI 2007,
https://www.aaai.org/Papers/AAAI/2007/AAAI07-096.pdf) and TreeBoostler (Azevedo Santos, Paes,
Zaverucha, "Transfer learning by mapping and revising boosted relational dependency networks",
Machine Learning 109, 2020, https://doi.org/10.1007/s10994-020-05871-x), with the clause learner
of :mod:`.learner`. TODTLER (Van Haaren, Kolobov, Davis, "TODTLER: Two-Order-Deep Transfer
Learning", AAAI 2015; its journal version Van Haaren et al., Machine Learning 2015) is the
second-order alternative it is compared with in ``experiments/relational``.

1. **Source model**: clauses and weights learned on every source example.
2. **Mapping**: the source target predicate maps to the target's; that fixes part of a type
   mapping, which must stay a bijection. Every other source predicate in the model maps to a
   target predicate of the same arity whose argument types agree with the type mapping; two
   source predicates never share a target predicate. A source predicate maps to nothing (its
   clauses are dropped) only when no free, type-consistent target predicate is left (the
   recorded TreeBoostler runs do not search the empty mapping either, ``searchEmpty=false``):
   the mapping carries the source model across, and dropping clauses is revision's business.
   All such maximal mappings are scored when there are at most ``max_exhaustive`` complete
   mappings, else a greedy beam search of width ``beam_width`` assigns predicates in order of
   their clauses' weight. A mapping's score is the mean log-posterior of the target *training*
   atoms under the mapped source model recalibrated on them (the source weights times a fitted
   scale ``a >= 0`` with the revision prior, plus a fitted bias; :class:`MappingScorer`): the
   pseudo-log-likelihood of TAMAR's mapping evaluation. Clauses that test a constant
   (``proteinclass(A, pcid121)``) never map: constants belong to one domain.
3. **Revision** (``revision``): ``none`` keeps the mapped weights (bias re-fitted);
   ``weights`` re-learns the mapped clauses' weights under a Gaussian prior centred on the
   transferred ones (TreeBoostler's "mapping + parameter learning"); ``full`` also adds the
   target's own candidate clauses (prior mean 0) and keeps the ``max_clauses`` strongest of
   both, so clauses are added and dropped. When no source clause survives the mapping,
   ``none`` and ``weights`` refuse the task (:class:`~tlbench.errors.IncompatibleTaskError`:
   the runner records it as skipped) rather than report the bias alone; ``full`` learns on the
   target and its diagnostics say that nothing transferred.

The result record's diagnostics give the mapping, the type mapping, how many source clauses
there are, how many test constants and how many survive the mapping (``n_source_clauses``,
``n_constant_clauses``, ``n_mapped_clauses``), the unmapped predicates and the search's
statistics.

Deviations from the papers
--------------------------
- The learner is a weighted-clause logistic model over relational paths (:mod:`.learner`), not
  Alchemy's MLN structure learning (TAMAR) or BoostSRL's relational regression trees
  (TreeBoostler), so revision re-weights, adds and drops whole clauses instead of TAMAR's
  clause shortening/lengthening or TreeBoostler's branch pruning and expansion.
- The mapping is global (one mapping for the whole model), as TreeBoostler's, not TAMAR's
  per-clause mappings; by default argument order is kept (``r(a, b)`` maps to ``q(a, b)``,
  never ``q(b, a)``), and two source predicates never share a target predicate.
  TreeBoostler's recorded runs allowed both (``searchArgPermutation`` and
  ``allowSameTargetMap``): ``arg_permutations`` (binary predicates, through their inverses,
  :func:`with_inverses`) and ``same_target`` turn them on.
- Mappings are scored with the source weights recalibrated by a scale and a bias: the class
  balance and the clauses' frequencies differ between domains, and with the source weights
  as they are the likelihood mostly measures that shift (see :class:`MappingScorer`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Self

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from ...errors import ConfigError, DataError, IncompatibleTaskError
from ...registry import register_method
from ...task import RelationalData, TransferTask
from ..base import TransferMethod
from .clauses import Clause, World, enumerate_clauses
from .learner import (
    ClauseModel,
    RelationalClassifierMixin,
    check_examples,
    check_hyperparameters,
    example_constants,
    fit_bias,
    fit_logistic,
    learn_model,
    log_likelihood,
    positives,
    select_and_fit,
)

REVISIONS = ("full", "weights", "none")


def fit_scale(s: np.ndarray, y: np.ndarray, prior_var: float = 10.0) -> tuple[float, float]:
    """The scale ``a >= 0`` and bias ``b`` of ``sigmoid(a s + b)`` that fit the labels ``y``.

    Platt's recalibration of a fixed score: it keeps the source model's clauses and their
    relative weights, and re-learns only how strongly the combination speaks on the target.
    ``a`` has a Gaussian prior of mean 1 and variance ``prior_var`` (the bias is free), so
    labels that the score separates do not send it to infinity.

    Returns
    -------
    a, b : float
        The maximum a posteriori scale and bias.
    """
    y = np.asarray(y, dtype=float)
    sign = 2.0 * y - 1.0

    def loss(theta):
        z = theta[0] * s + theta[1]
        g = -sign * expit(-sign * z)
        value = -np.sum(log_expit(sign * z)) + 0.5 * (theta[0] - 1.0) ** 2 / prior_var
        return value, np.array([g @ s + (theta[0] - 1.0) / prior_var, g.sum()])

    start = np.array([1.0, fit_bias(s, y)])
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(res.x[0]), float(res.x[1])


class MappingScorer:
    """Scores mappings of a source model on the target training atoms, caching clause columns.

    A mapping's score is the mean log-posterior of the target training atoms under the mapped
    source model recalibrated on them: ``sigmoid(a * sum_k w_k f_k + b)`` with the source
    weights ``w``, a fitted scale ``a >= 0`` (prior mean 1, variance ``prior_C``, the
    revision prior's) and a fitted bias ``b`` (:func:`fit_scale`). With the
    source weights as they are (``a = 1``), a model learned on 250 negatives per positive
    (Yeast) overshoots on 2 (Twitter): every mapped clause then scores below the bias alone and
    the search maps nothing. Re-learning every weight instead would score the mapped clause
    set, not the source model: a free fit is as good with ``director -> student`` as with
    ``director -> professor`` (it flips the weight), so the source's knowledge would not steer
    the mapping.
    """

    def __init__(
        self, model: ClauseModel, data: RelationalData, y: np.ndarray, prior_C: float = 10.0
    ) -> None:
        self.model = model
        self.prior_C = prior_C
        self.world = World(data, values=y)  # recursive clauses read the other labels
        self.idx = self.world.example_index(data.examples, data.target)
        self.y = np.asarray(y)
        self._columns: dict[Clause, np.ndarray] = {}
        self._scores: dict[tuple, tuple[float, float]] = {}
        self.n_scored = 0

    def column(self, clause: Clause) -> np.ndarray:
        """The target feature of a mapped clause (cached)."""
        if clause not in self._columns:
            self._columns[clause] = self.world.evaluate(clause, self.idx)
        return self._columns[clause]

    def mapped(self, mapping: Mapping[str, str | None]) -> tuple[list[Clause], np.ndarray]:
        """The source clauses whose predicates all map, renamed, with their source weights."""
        clauses, weights = [], []
        for clause, w in zip(self.model.clauses, self.model.weights, strict=True):
            if clause.predicates() <= mapping.keys():
                renamed = clause.rename(mapping)
                if renamed is not None and renamed not in clauses:
                    clauses.append(renamed)
                    weights.append(float(w))
        return clauses, np.asarray(weights)

    def fit(self, mapping: Mapping[str, str | None]) -> tuple[float, float]:
        """Mean log-posterior and fitted scale ``a`` of the recalibrated mapped model."""
        clauses, weights = self.mapped(mapping)
        key = tuple(zip(clauses, weights, strict=True))
        if key not in self._scores:
            self.n_scored += 1
            s = np.zeros(len(self.y))
            for c, w in key:
                s += w * self.column(c)
            a, b = fit_scale(s, self.y, self.prior_C)
            penalty = 0.5 * (a - 1.0) ** 2 / self.prior_C / len(self.y)
            self._scores[key] = (log_likelihood(a * s + b, self.y) - penalty, a)
        return self._scores[key]

    def score(self, mapping: Mapping[str, str | None]) -> float:
        """Mean log-posterior of the target atoms under the recalibrated mapped model."""
        return self.fit(mapping)[0]


#: the suffix of a binary predicate's inverse (:func:`with_inverses`): q~inv(b, a) iff q(a, b)
INVERSE_SUFFIX = "~inv"


def with_inverses(data: RelationalData) -> RelationalData:
    """``data`` with the inverse ``q~inv(b, a) <=> q(a, b)`` of every binary background predicate.

    Mapping a source predicate to ``q~inv`` is mapping it to ``q`` with its arguments swapped
    (TreeBoostler's ``searchArgPermutation``): ``companyceo(company, ceo)`` can then map to
    ``athleteplaysforteam(athlete, team)`` read backwards under company -> team, ceo -> athlete.
    A method that maps to inverses reads its target data, training and test, through this view.
    """
    preds, facts = dict(data.predicates), dict(data.facts)
    for q, types in data.predicates.items():
        if q == data.target or len(types) != 2 or q.endswith(INVERSE_SUFFIX):
            continue
        inv = q + INVERSE_SUFFIX
        if inv in data.predicates:
            raise DataError(
                f"relational domain {data.name!r} declares {inv!r}, the name of {q!r}'s inverse"
            )
        preds[inv] = (types[1], types[0])
        facts[inv] = tuple((b, a) for a, b in data.facts.get(q, ()))
    return replace(data, predicates=preds, facts=facts)


def base_predicate(name: str | None) -> str | None:
    """The stored predicate behind a mapping target (``q`` for ``q~inv``)."""
    if name is not None and name.endswith(INVERSE_SUFFIX):
        return name[: -len(INVERSE_SUFFIX)]
    return name


def _candidates(
    state: tuple[dict, dict],
    pred: str,
    src_types: dict,
    tgt_types: dict,
    target: str,
    same_target: bool = False,
) -> list[tuple[dict, dict]]:
    """Every type-consistent assignment of ``pred`` to a target predicate (no ``None``).

    The target predicate must be free (no other source predicate maps to it or to its
    inverse) unless ``same_target``.
    """
    mapping, type_map = state
    used = set() if same_target else {base_predicate(v) for v in mapping.values()} - {None}
    inverse = {v: k for k, v in type_map.items()}
    out = []
    for cand in sorted(tgt_types):
        if base_predicate(cand) in used or base_predicate(cand) == target:
            continue
        if len(tgt_types[cand]) != len(src_types[pred]):
            continue
        tm = dict(type_map)
        inv = dict(inverse)
        ok = True
        for s, t in zip(src_types[pred], tgt_types[cand], strict=True):
            if tm.get(s, t) != t or inv.get(t, s) != s:
                ok = False
                break
            tm[s], inv[t] = t, s
        if ok:
            out.append(({**mapping, pred: cand}, tm))
    return out


def _extend(
    state: tuple[dict, dict],
    pred: str,
    src_types: dict,
    tgt_types: dict,
    target: str,
    same_target: bool = False,
) -> list[tuple[dict, dict]]:
    """Every type-consistent assignment of ``pred`` on top of a partial mapping, plus nothing."""
    mapping, type_map = state
    return [
        ({**mapping, pred: None}, type_map),
        *_candidates(state, pred, src_types, tgt_types, target, same_target),
    ]


def _maximal(
    state: tuple[dict, dict],
    src_types: dict,
    tgt_types: dict,
    target: str,
    same_target: bool = False,
) -> bool:
    """Whether no unmapped predicate of a complete mapping could still be mapped.

    A source predicate maps to nothing only when no free, type-consistent target predicate is
    left: otherwise the empty mapping, whose score no miscalibrated source model beats, would
    drop the clauses that revision is there to judge.
    """
    mapping, type_map = state
    for pred, value in mapping.items():
        if value is None:
            rest = {k: v for k, v in mapping.items() if k != pred}
            if _candidates((rest, type_map), pred, src_types, tgt_types, target, same_target):
                return False
    return True


def _order_key(row: tuple) -> tuple:
    """Best score first; ties broken by the mapping's names, so the search is deterministic."""
    return (-row[0], sorted((k, v or "") for k, v in row[1].items()))


def head_type_map(source: RelationalData, target: RelationalData) -> dict[str, str]:
    """The type mapping fixed by the two target predicates (an error when they cannot map)."""
    s_head, t_head = source.predicates[source.target], target.predicates[target.target]
    if len(s_head) != len(t_head):
        raise IncompatibleTaskError(
            f"no mapping of {source.target!r} (arity {len(s_head)}) to {target.target!r} "
            f"(arity {len(t_head)}): the target predicates differ in arity"
        )
    type_map: dict[str, str] = {}
    for s, t in zip(s_head, t_head, strict=True):
        if type_map.get(s, t) != t or {v: k for k, v in type_map.items()}.get(t, s) != s:
            raise IncompatibleTaskError(
                f"no type-consistent mapping of {source.target}{s_head} to {target.target}{t_head}"
            )
        type_map[s] = t
    return type_map


def search_mappings(
    source: RelationalData,
    target: RelationalData,
    order: list[str],
    scorer: Any,
    *,
    beam_width: int,
    max_exhaustive: int,
    same_target: bool = False,
) -> tuple[list[tuple[float, dict[str, str | None], dict[str, str]]], str, int]:
    """Type-consistent mappings of the source predicates ``order``, scored, best first.

    Every maximal complete mapping when there are at most ``max_exhaustive`` of them; else a
    beam search in ``order``, where a predicate maps to nothing only when no candidate is
    left at its turn (later steps only use up targets and fix types, so every mapping kept is
    maximal). ``scorer.score(mapping)`` is larger for a better mapping. ``same_target``: two
    source predicates may map to one target predicate (TreeBoostler's ``allowSameTargetMap``);
    a ``target`` read through :func:`with_inverses` offers every binary predicate both ways.
    Returns the scored ``(score, mapping, type_map)`` list, the search's name and the number
    of complete mappings.
    """
    src_types, tgt_types = dict(source.predicates), dict(target.predicates)
    start = ({source.target: target.target}, head_type_map(source, target))
    tgt = target.target

    def extend(state: tuple[dict, dict], p: str) -> list[tuple[dict, dict]]:
        return _extend(state, p, src_types, tgt_types, tgt, same_target)

    options = [len(extend(start, p)) for p in order]
    n_complete = int(np.prod(options, dtype=float)) if order else 1
    if n_complete <= max_exhaustive:
        states = [start]
        for p in order:  # all consistent complete mappings, then the maximal ones
            states = [n for s in states for n in extend(s, p)]
        states = [s for s in states if _maximal(s, src_types, tgt_types, tgt, same_target)]
        scored = [(scorer.score(m), m, tm) for m, tm in states]
        search = "exhaustive"
    else:
        beam = [(scorer.score(start[0]), *start)]
        for p in order:
            grown = []
            for _, *s in beam:
                nxt = _candidates(tuple(s), p, src_types, tgt_types, tgt, same_target)
                nxt = nxt or [({**s[0], p: None}, s[1])]
                grown += [(scorer.score(m), m, tm) for m, tm in nxt]
            grown.sort(key=_order_key)
            beam = grown[:beam_width]
        scored = beam
        search = f"beam (width {beam_width})"
    scored.sort(key=_order_key)
    return scored, search, n_complete


def search_mapping(
    model: ClauseModel,
    source: RelationalData,
    scorer: MappingScorer,
    target: RelationalData,
    *,
    beam_width: int,
    max_exhaustive: int,
    same_target: bool = False,
) -> tuple[dict[str, str | None], dict[str, str], dict[str, Any]]:
    """The best type-consistent mapping of the model's predicates (see the module docstring).

    Returns the predicate mapping, the type mapping and search statistics.
    """
    weight: dict[str, float] = {}
    for clause, w in zip(model.clauses, model.weights, strict=True):
        if clause.const is None:  # a constant clause never maps, whatever its predicates
            for p in clause.predicates():
                weight[p] = weight.get(p, 0.0) + abs(float(w))
    order = sorted(weight, key=lambda p: (-weight[p], p))
    # Greedy in the order of the clauses' weight when exhaustive search is too large
    # (TreeBoostler maps a tree's nodes top down).
    scored, search, n_complete = search_mappings(
        source, target, order, scorer, beam_width=beam_width, max_exhaustive=max_exhaustive,
        same_target=same_target,
    )  # fmt: skip
    best_score, mapping, type_map = scored[0]
    info = {
        "search": search,
        "n_mappings_upper_bound": n_complete,
        "n_candidates": len(scored),
        "n_scored": scorer.n_scored,
        "score": float(best_score),
        "score_scale": float(scorer.fit(mapping)[1]),
        "score_bias_only": float(scorer.score({source.target: target.target})),
    }
    return mapping, type_map, info


@register_method("predicate_mapping")
class PredicateMapping(RelationalClassifierMixin, TransferMethod):
    """Learn clauses on the source, map predicates to the target, revise on the target.

    Parameters
    ----------
    revision : {"full", "weights", "none"}, default="full"
        ``full``: re-learn the mapped weights (prior on the transferred ones) and add or drop
        clauses; ``weights``: re-learn the mapped weights only (TreeBoostler's "mapping +
        parameter learning"); ``none``: the mapped model as is, bias re-fitted (the
        mapped-without-revision baseline).
    max_chain_len, max_node_len, max_clauses, C, recursive, max_recursive_len, max_constants
        The clause learner's (see :class:`~tlbench.methods.relational.learner.RelationalScratch`).
    prior_C : float, default=10.0
        Inverse strength of the Gaussian prior that holds revised weights near the transferred
        ones (the prior variance); also the prior variance of the mapping score's scale.
    beam_width : int, default=5
        Beam width of the mapping search when exhaustive search is too large.
    max_exhaustive : int, default=5000
        Largest number of complete mappings enumerated exhaustively (only the maximal ones,
        where no unmapped predicate could still map, are scored).
    arg_permutations : bool, default=False
        Also map a binary source predicate to a target predicate with its arguments swapped
        (TreeBoostler's ``searchArgPermutation``; :func:`with_inverses`).
    same_target : bool, default=False
        Let two source predicates map to the same target predicate (TreeBoostler's
        ``allowSameTargetMap``).

    Attributes
    ----------
    source_model_ : ClauseModel
        The model learned on the source.
    mapping_ : dict of str to str or None
        Source predicate -> target predicate (``None``: not mapped, its clauses dropped).
    type_mapping_ : dict of str to str
        Source type -> target type.
    model_ : ClauseModel
        The final model on the target.
    target_predicate_ : str
    diagnostics_ : dict
        Mapping, type mapping, ``n_source_clauses`` / ``n_constant_clauses`` /
        ``n_mapped_clauses`` (source clauses, those testing a constant, those surviving the
        mapping), ``unmapped_predicates``, ``transferred``, search statistics, source and final
        clauses as text, timings.

    Raises
    ------
    IncompatibleTaskError
        From ``fit``, when the head predicates differ in arity or types, or when no source
        clause survives the mapping and ``revision`` is ``none`` or ``weights``.
    """

    family: ClassVar[str] = "relational"
    final_classifier: ClassVar[str] = "weighted clauses"
    supports: ClassVar[frozenset[str]] = frozenset({"relational"})
    needs_target_labels: ClassVar[bool] = True  # the mapping score and revision use them
    paper: ClassVar[str] = (
        "Mihalkova, Huynh, Mooney, AAAI 2007 (TAMAR); Azevedo Santos, Paes, Zaverucha, "
        "Machine Learning 2020 (TreeBoostler)"
    )

    def __init__(
        self,
        *,
        revision: str = "full",
        max_chain_len: int = 2,
        max_node_len: int = 2,
        max_clauses: int = 20,
        C: float = 1.0,
        recursive: bool = True,
        max_constants: int = 200,
        max_recursive_len: int = 2,
        prior_C: float = 10.0,
        beam_width: int = 5,
        max_exhaustive: int = 5000,
        arg_permutations: bool = False,
        same_target: bool = False,
    ) -> None:
        self.revision = revision
        self.max_chain_len = max_chain_len
        self.max_node_len = max_node_len
        self.max_clauses = max_clauses
        self.C = C
        self.recursive = recursive
        self.max_constants = max_constants
        self.max_recursive_len = max_recursive_len
        self.prior_C = prior_C
        self.beam_width = beam_width
        self.max_exhaustive = max_exhaustive
        self.arg_permutations = arg_permutations
        self.same_target = same_target

    def _target_view(self, X: RelationalData) -> RelationalData:
        return with_inverses(X) if self.arg_permutations else X

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Learn on the source, search the mapping, revise on the labeled target examples."""
        self.check_task(task)
        check_hyperparameters(self)
        if self.revision not in REVISIONS:
            raise ConfigError(f"method.revision must be one of {REVISIONS}, got {self.revision!r}")
        if self.prior_C <= 0 or self.beam_width < 1 or self.max_exhaustive < 1:
            raise ConfigError("method.prior_C, beam_width and max_exhaustive must be positive")
        source, target = task.source.labeled(), task.target.labeled()
        check_examples(source.X, source.y, "source")
        check_examples(target.X, target.y, "target")
        target = replace(target, X=self._target_view(target.X))
        times = {}
        t0 = time.perf_counter()
        self.source_model_ = learn_model(
            source.X,
            source.y,
            max_chain_len=self.max_chain_len,
            max_node_len=self.max_node_len,
            max_clauses=self.max_clauses,
            C=self.C,
            recursive=self.recursive,
            max_constants=self.max_constants,
            max_recursive_len=self.max_recursive_len,
        )
        times["source_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        scorer = MappingScorer(self.source_model_, target.X, target.y, self.prior_C)
        self.mapping_, self.type_mapping_, search = search_mapping(
            self.source_model_,
            source.X,
            scorer,
            target.X,
            beam_width=self.beam_width,
            max_exhaustive=self.max_exhaustive,
            same_target=bool(self.same_target),
        )
        times["mapping_seconds"] = time.perf_counter() - t0
        transfer = self._transfer_summary(scorer, source.X, target.X)
        if not transfer["n_mapped_clauses"] and self.revision != "full":
            # an empty mapped model is the bias alone (AUC 0.5): not a result of transfer
            raise IncompatibleTaskError(
                f"no clause of the {source.X.name or 'source'} model of {source.X.target!r} "
                f"survives the mapping to {target.X.target!r} "
                f"({transfer['n_source_clauses']} source clauses, "
                f"{transfer['n_constant_clauses']} with domain constants, unmapped predicates: "
                f"{', '.join(transfer['unmapped_predicates']) or 'none'}); "
                f"method.revision={self.revision} would report an empty model"
            )
        t0 = time.perf_counter()
        mapped, added, dropped = self._revise(scorer, target.X, target.y)
        times["revision_seconds"] = time.perf_counter() - t0
        mapped.evidence = positives(target.X, target.y)  # read by recursive clauses
        self.model_ = mapped
        self.target_predicate_ = target.X.target
        self.classes_ = np.array([0, 1])
        self.diagnostics_ = {
            "mapping": dict(self.mapping_),
            "type_mapping": dict(self.type_mapping_),
            **transfer,
            **search,
            "revision": self.revision,
            "source_clauses": self.source_model_.describe(),
            "clauses": self.model_.describe(),
            "clauses_added": added,
            "clauses_dropped": dropped,
            **{k: round(v, 4) for k, v in times.items()},
        }
        return self

    def _transfer_summary(
        self, scorer: MappingScorer, source: RelationalData, target: RelationalData
    ) -> dict[str, Any]:
        """How much of the source model the mapping carries across, for the result record."""
        source_clauses = self.source_model_.clauses
        mapped, _ = scorer.mapped(self.mapping_)
        unmapped = sorted(p for p, v in self.mapping_.items() if v is None)
        out: dict[str, Any] = {
            "n_source_clauses": len(source_clauses),
            "n_constant_clauses": sum(c.const is not None for c in source_clauses),
            "n_mapped_clauses": len(mapped),
            "unmapped_predicates": unmapped,
            "transferred": bool(mapped),
        }
        if not mapped:
            out["note"] = (
                f"nothing transferred: no clause of the source model of {source.target!r} "
                f"survives the mapping to {target.target!r}; the model is learned on the target "
                "alone, as relational_scratch's"
            )
        return out

    def _revise(
        self, scorer: MappingScorer, data: RelationalData, y: np.ndarray
    ) -> tuple[ClauseModel, list[str], list[str]]:
        """The target model after ``revision``; the clauses added and dropped, as text."""
        arity = len(data.predicates[data.target])
        clauses, prior = scorer.mapped(self.mapping_)
        n_lost = len(self.source_model_.clauses) - len(clauses)
        lost = [f"{n_lost} source clause(s) with constants or unmapped predicates"]
        X = np.column_stack([scorer.column(c) for c in clauses]) if clauses else None
        if self.revision == "none":
            model = ClauseModel(data.target, arity, clauses, prior, fit_bias(X @ prior, y))
            return model, [], lost
        if self.revision == "weights":
            b0 = fit_bias(X @ prior, y)
            w, b = fit_logistic(X, y, C=self.prior_C, prior=prior, bias=b0)
            return ClauseModel(data.target, arity, clauses, w, b), [], lost
        own = enumerate_clauses(
            data.predicates,
            data.target,
            max_chain_len=self.max_chain_len,
            max_node_len=self.max_node_len,
            recursive=self.recursive,
            constants=example_constants(data, self.max_constants, y),
            max_recursive_len=self.max_recursive_len,
        )
        new = [c for c in own if c not in set(clauses)]
        every = clauses + new
        X_all = np.column_stack([scorer.column(c) for c in every])
        C = np.r_[np.full(len(clauses), self.prior_C), np.full(len(new), self.C)]
        mean = np.r_[prior, np.zeros(len(new))]
        keep, w, b = select_and_fit(X_all, y, self.max_clauses, C, prior=mean)
        kept = [every[k] for k in keep]
        model = ClauseModel(data.target, arity, kept, w, b)
        added = [c.describe(data.target, arity) for c in kept if c not in clauses]
        dropped = [c.describe(data.target, arity) for c in clauses if c not in kept]
        return model, added, dropped
