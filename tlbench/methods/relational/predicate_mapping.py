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
   target predicate of the same arity whose argument types agree with the type mapping, or to
   nothing (its clauses are dropped); two source predicates never share a target predicate.
   All complete mappings are scored when there are at most ``max_exhaustive`` of them, else a
   beam search of width ``beam_width`` assigns predicates in order of their clauses' weight.
   A mapping's score is the mapped model's pseudo-log-likelihood of the target training atoms
   (mean log P(label | Markov blanket)) with the source weights and a re-fitted bias.
3. **Revision** (``revision``): ``none`` keeps the mapped weights (bias re-fitted);
   ``weights`` re-learns the mapped clauses' weights under a Gaussian prior centred on the
   transferred ones; ``full`` also adds the target's own candidate clauses (prior mean 0) and
   keeps the ``max_clauses`` strongest of both, so clauses are added and dropped.

Deviations from the papers
--------------------------
- The learner is a weighted-clause logistic model over relational paths (:mod:`.learner`), not
  Alchemy's MLN structure learning (TAMAR) or BoostSRL's relational regression trees
  (TreeBoostler), so revision re-weights, adds and drops whole clauses instead of TAMAR's
  clause shortening/lengthening or TreeBoostler's branch pruning and expansion.
- The mapping is global (one mapping for the whole model), as TreeBoostler's, not TAMAR's
  per-clause mappings; argument order is kept (``r(a, b)`` maps to ``q(a, b)``, never
  ``q(b, a)``).
- Mappings are scored with a re-fitted bias: the class balance of the target atoms differs
  from the source's, and without it the likelihood mostly measures that shift.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Self

import numpy as np

from ...errors import ConfigError, IncompatibleTaskError
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


class MappingScorer:
    """Scores mappings of a source model on the target training atoms, caching clause columns."""

    def __init__(self, model: ClauseModel, data: RelationalData, y: np.ndarray) -> None:
        self.model = model
        self.world = World(data, values=y)  # recursive clauses read the other labels
        self.idx = self.world.example_index(data.examples, data.target)
        self.y = np.asarray(y)
        self._columns: dict[Clause, np.ndarray] = {}
        self.n_scored = 0

    def column(self, clause: Clause) -> np.ndarray:
        """The target feature of a mapped clause (cached)."""
        if clause not in self._columns:
            self._columns[clause] = self.world.evaluate(clause, self.idx)
        return self._columns[clause]

    def score(self, mapping: dict[str, str | None]) -> float:
        """Pseudo-log-likelihood of the target atoms under the mapped model (bias re-fitted)."""
        self.n_scored += 1
        z = np.zeros(len(self.y))
        for clause, w in zip(self.model.clauses, self.model.weights, strict=True):
            if clause.predicates() <= mapping.keys():
                mapped = clause.rename(mapping)
                if mapped is not None:
                    z += w * self.column(mapped)
        return log_likelihood(z + fit_bias(z, self.y), self.y)


def _extend(
    state: tuple[dict, dict], pred: str, src_types: dict, tgt_types: dict, target: str
) -> list[tuple[dict, dict]]:
    """Every type-consistent assignment of ``pred`` on top of a partial mapping, plus nothing."""
    mapping, type_map = state
    used = {v for v in mapping.values() if v is not None}
    inverse = {v: k for k, v in type_map.items()}
    out = [({**mapping, pred: None}, type_map)]
    for cand in sorted(tgt_types):
        if cand == target or cand in used or len(tgt_types[cand]) != len(src_types[pred]):
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


def search_mapping(
    model: ClauseModel,
    source: RelationalData,
    scorer: MappingScorer,
    target: RelationalData,
    *,
    beam_width: int,
    max_exhaustive: int,
) -> tuple[dict[str, str | None], dict[str, str], dict[str, Any]]:
    """The best type-consistent mapping of the model's predicates (see the module docstring).

    Returns the predicate mapping, the type mapping and search statistics.
    """
    src_types, tgt_types = dict(source.predicates), dict(target.predicates)
    s_head, t_head = src_types[source.target], tgt_types[target.target]
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
    weight: dict[str, float] = {}
    for clause, w in zip(model.clauses, model.weights, strict=True):
        for p in clause.predicates():
            weight[p] = weight.get(p, 0.0) + abs(float(w))
    order = sorted(weight, key=lambda p: (-weight[p], p))
    start = ({source.target: target.target}, type_map)
    options = [len(_extend(start, p, src_types, tgt_types, target.target)) for p in order]
    n_complete = int(np.prod(options, dtype=float)) if order else 1
    if n_complete <= max_exhaustive:
        states = [start]
        for p in order:  # all consistent complete mappings
            states = [n for s in states for n in _extend(s, p, src_types, tgt_types, target.target)]
        scored = [(scorer.score(m), m, tm) for m, tm in states]
        search = "exhaustive"
    else:
        beam = [(scorer.score(start[0]), *start)]
        for p in order:
            grown = [
                (scorer.score(m), m, tm)
                for _, *s in beam
                for m, tm in _extend(tuple(s), p, src_types, tgt_types, target.target)
            ]
            grown.sort(key=lambda r: (-r[0], sorted((k, v or "") for k, v in r[1].items())))
            beam = grown[:beam_width]
        scored = beam
        search = f"beam (width {beam_width})"
    scored.sort(key=lambda r: (-r[0], sorted((k, v or "") for k, v in r[1].items())))
    best_score, mapping, type_map = scored[0]
    info = {
        "search": search,
        "n_mappings_upper_bound": n_complete,
        "n_scored": scorer.n_scored,
        "score": float(best_score),
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
        ones (the prior variance).
    beam_width : int, default=5
        Beam width of the mapping search when exhaustive search is too large.
    max_exhaustive : int, default=5000
        Largest number of complete mappings scored exhaustively.

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
        Mapping, search statistics, source and final clauses as text, timings.
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
        scorer = MappingScorer(self.source_model_, target.X, target.y)
        self.mapping_, self.type_mapping_, search = search_mapping(
            self.source_model_,
            source.X,
            scorer,
            target.X,
            beam_width=self.beam_width,
            max_exhaustive=self.max_exhaustive,
        )
        times["mapping_seconds"] = time.perf_counter() - t0
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
            **search,
            "revision": self.revision,
            "source_clauses": self.source_model_.describe(),
            "clauses": self.model_.describe(),
            "clauses_added": added,
            "clauses_dropped": dropped,
            **{k: round(v, 4) for k, v in times.items()},
        }
        return self

    def _revise(
        self, scorer: MappingScorer, data: RelationalData, y: np.ndarray
    ) -> tuple[ClauseModel, list[str], list[str]]:
        """The target model after ``revision``; the clauses added and dropped, as text."""
        arity = len(data.predicates[data.target])
        clauses, weights = [], []
        for clause, w in zip(self.source_model_.clauses, self.source_model_.weights, strict=True):
            mapped = clause.rename(self.mapping_)
            if mapped is not None and mapped not in clauses:
                clauses.append(mapped)
                weights.append(float(w))
        dropped_at_mapping = len(self.source_model_.clauses) - len(clauses)
        prior = np.asarray(weights)
        X = np.column_stack([scorer.column(c) for c in clauses]) if clauses else None
        if self.revision == "none" or not clauses and self.revision == "weights":
            z = X @ prior if X is not None else np.zeros(len(y))
            model = ClauseModel(data.target, arity, clauses, prior, fit_bias(z, y))
            return model, [], [f"{dropped_at_mapping} source clause(s) with unmapped predicates"]
        if self.revision == "weights":
            w, b = fit_logistic(X, y, C=self.prior_C, prior=prior)
            model = ClauseModel(data.target, arity, clauses, w, b)
            return model, [], [f"{dropped_at_mapping} source clause(s) with unmapped predicates"]
        own = enumerate_clauses(
            data.predicates,
            data.target,
            max_chain_len=self.max_chain_len,
            max_node_len=self.max_node_len,
            recursive=self.recursive,
            constants=example_constants(data, self.max_constants),
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
