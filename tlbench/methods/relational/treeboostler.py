"""TreeBoostler: transfer by mapping and revising boosted relational dependency networks.

Azevedo Santos, Paes, Zaverucha, "Transfer learning by mapping and revising boosted relational
dependency networks", Machine Learning 109, 2020 (https://doi.org/10.1007/s10994-020-05871-x).

1. **Source model**: RDN-Boost (:mod:`.rdn_boost`, Natarajan et al. MLJ 2012) learned on every
   source example (negatives subsampled to ``neg_pos_ratio`` per positive, as BoostSRL does).
2. **Mapping**: the source target predicate maps to the target's; every predicate the trees
   test maps to at most one free target predicate of the same arity whose argument types agree
   with the (bijective) type mapping, argument order kept (unless ``arg_permutations``:
   then a binary predicate may also map backwards); the rules and the candidate
   generation are :mod:`.predicate_mapping`'s (:func:`search_mappings`). A
   predicate maps to nothing only when no free, type-consistent target predicate is left.
   Predicates are assigned in the order the trees first use them (tree by tree, breadth first:
   TreeBoostler maps a tree's nodes top down). Exhaustive over the maximal mappings when there
   are at most ``max_exhaustive``, else a beam of width ``beam_width``.
   **Score**: a candidate mapping is applied to the trees (:func:`map_trees`), their leaf values
   are re-learned on the target training examples in boosting order
   (:meth:`~.rdn_boost.RDNBoostModel.refit_leaves`), and the score is the mean log-likelihood
   of those examples under the re-fitted model. Re-fitting the leaves in order minimises, tree
   by tree, the weighted squared error of the functional gradients around the leaf means, the
   criterion TreeBoostler's mapping search uses; we report the log-likelihood it leads to.
3. **Revision** (``revision``): ``none``: mapped trees with their source leaf values and
   ``psi_0``; ``weights``: leaf values re-learned on the target (the paper's "mapping +
   parameter learning"); ``full``: theory revision of the re-fitted trees
   (:func:`revise_trees`). The target training examples are split (seeded, stratified) into a
   growing part and a validation part (``validation_fraction``); tree by tree, in boosting
   order, each *revision point* is tried: a leaf whose examples' gradients have a weighted
   variance above ``revision_threshold`` is expanded by the RDN-Boost node search on the
   growing examples that reach it; an inner node whose two children are leaves is pruned to a
   leaf. A revision is kept only if it lowers the validation log-loss of the model up to that
   tree (leaves re-fitted on the growing part). Finally all leaves are re-fitted on every
   target training example; if that model fits the training examples worse than the
   ``weights`` model, the ``weights`` model is kept (``diagnostics_["revision_kept"]``; the
   counts of pruned and expanded nodes then describe the revision that was not kept).
   ``revision_points="purity"`` replaces the point-by-point search by the revision loop of
   TreeBoostler's released code (:func:`revise_trees_by_purity`): per tree the least pure
   leaf is the revision point; it is pruned with its sibling or grown into a subtree, all
   trees at once make one candidate, and a candidate replaces the current model only when
   it scores higher on the validation part (AUC-ROC as released, or ``cll``), for at most
   ``max_revision_iterations`` candidates.
   The test fold is never seen: the method reads ``task.target`` only.

Diagnostics: the mapping and the type mapping, the trees and test nodes of the source model
(``n_source_trees``, ``n_source_nodes``), those surviving the mapping (``n_mapped_trees``: trees
with a test left, ``n_mapped_nodes``), the nodes dropped by the mapping, the revision's
``n_pruned`` / ``n_expanded``, the search's statistics and timings.

Deviations from the paper
-------------------------
- The RDN-Boost learner is :mod:`.rdn_boost`'s pure-Python one, not BoostSRL (see its
  deviations); one target predicate. Recursion (``recursion``) is off by default; the recorded
  runs had it on and read every fold's positives, test folds included, as facts: here the
  known atoms are the target training positives only.
- A node whose test uses an unmapped predicate or a constant (``#`` argument, head test
  ``B = c``: constants name things of the source world) is replaced by its false branch: in
  the target such a test has no grounding, so every example would take the false branch
  anyway. TreeBoostler instead drops the unmapped literal from the conjunction.
- By default argument order is kept and two source predicates never share a target
  predicate; TreeBoostler's recorded runs allowed both (``searchArgPermutation``,
  ``allowSameTargetMap``), here ``arg_permutations`` (binary predicates only, through their
  inverses) and ``same_target``.
- The default revision points are leaves with a high gradient variance and inner nodes whose
  children are leaves; an expansion adds one test (a conjunction of at most ``node_size``
  literals) per revision point, and acceptance is judged on a held-out part of the target
  training data. The paper marks revision points by the examples reaching each leaf and
  re-learns whole branches with BoostSRL; ``revision_points="purity"`` follows its released
  code (``boostedrevision.py``: impure leaves, the worst per tree, BoostSRL's refinement
  with ``forceLearningIn`` / ``removeNode``). Differences there: the subtree is grown by
  :mod:`.rdn_boost`'s node search and leaves are fitted in boosting order on the growing
  part, where BoostSRL re-learns every tree's refinement; the validation part is held out
  (``validation_fraction``), where the released experiments judged on a sample of the
  training examples they also learned from.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Self

import numpy as np

from ...errors import ConfigError, IncompatibleTaskError
from ...registry import register_method
from ...task import RelationalData, TransferTask
from ..base import TransferMethod
from .learner import RelationalClassifierMixin, check_examples, positives
from .metrics import roc_auc
from .predicate_mapping import search_mappings, with_inverses
from .rdn_boost import (
    EQUALS,
    Grounder,
    GroundingLimit,
    RDNBoostModel,
    RelationalRegressionTree,
    TreeNode,
    _Open,
    _TreeLearner,
    count_recursive_nodes,
    gradients,
    infer_modes,
    initial_potential,
    learn_rdn_boost,
    log_loss,
    recursion_predicate,
    subsample_negatives,
    value_types,
    with_inference,
    with_recursion,
)

REVISIONS = ("full", "weights", "none")
REVISION_POINTS = ("variance", "purity")


# --------------------------------------------------------------------------- mapping trees


def _transferable(node: TreeNode, mapping: Mapping[str, str | None]) -> bool:
    """Whether every literal of ``node``'s test maps (a mapped predicate, no constant)."""
    for lit in node.test:
        if lit.predicate == EQUALS or mapping.get(lit.predicate) is None:
            return False
        if any(isinstance(a, str) for a in lit.args):
            return False
    return True


def _map_node(node: TreeNode, mapping: Mapping[str, str | None], dropped: list[int]) -> TreeNode:
    """A renamed copy of the subtree; untransferable tests are replaced by their false branch."""
    if node.is_leaf:
        return TreeNode(value=node.value, n_examples=node.n_examples)
    if not _transferable(node, mapping):
        # no target example can ground this test, so all of them go to the false branch
        dropped[0] += 1 + _count_tests(node.true)
        return _map_node(node.false, mapping, dropped)
    test = tuple(
        lit.rename({k: v for k, v in mapping.items() if v is not None}) for lit in node.test
    )
    return TreeNode(
        test=test,
        true=_map_node(node.true, mapping, dropped),
        false=_map_node(node.false, mapping, dropped),
        value=node.value,
        n_examples=node.n_examples,
    )


def _count_tests(node: TreeNode) -> int:
    if node.is_leaf:
        return 0
    return 1 + _count_tests(node.true) + _count_tests(node.false)


def map_trees(model: RDNBoostModel, mapping: Mapping[str, str | None]) -> tuple[RDNBoostModel, int]:
    """The model over the target's predicates, and how many test nodes the mapping dropped.

    Parameters
    ----------
    model : RDNBoostModel
        The source model.
    mapping : mapping of str to str or None
        Source predicate -> target predicate (the target predicate included); ``None`` or
        absent: not mapped.

    Returns
    -------
    mapped : RDNBoostModel
        Same leaf values and ``init``; nodes whose test cannot be grounded in the target (an
        unmapped predicate, a constant) replaced by their false branch.
    n_dropped : int
        Test nodes removed (the dropped nodes and the true branches below them).
    """
    dropped = [0]
    trees = [
        RelationalRegressionTree(
            _map_node(t.root, mapping, dropped), mapping[model.target], t.arity
        )
        for t in model.trees
    ]
    mapped = RDNBoostModel(
        target=mapping[model.target],
        arity=model.arity,
        trees=trees,
        init=model.init,
        step=model.step,
        init_rule=model.init_rule,
        info={},
        recursion=model.recursion,
    )
    return mapped, dropped[0]


def _key(node: TreeNode) -> tuple:
    """The structure of a subtree (its tests), for caching leaf assignments."""
    if node.is_leaf:
        return ()
    return (node.test, _key(node.true), _key(node.false))


class TreeMappingScorer:
    """Scores tree mappings on the target training examples, caching leaf assignments.

    The score of a mapping is the mean log-likelihood of the examples under the mapped trees
    with their leaves re-fitted in boosting order (the same values as
    :meth:`RDNBoostModel.refit_leaves`, computed on one shared grounding of the world).
    """

    def __init__(
        self,
        model: RDNBoostModel,
        data: RelationalData,
        y: np.ndarray,
        max_bindings: int | None = None,
        fixed: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.fixed = dict(fixed or {})  # entries every mapping has (recursion -> recursion)
        self.max_bindings = max_bindings
        self.n_over_limit = 0
        self.data = data
        self.y = np.asarray(y, dtype=float)
        self.grounder = Grounder(data)
        self._leaves: dict[tuple, np.ndarray] = {}
        self._scores: dict[tuple, float] = {}
        self.n_scored = 0

    def leaf_index(self, tree: RelationalRegressionTree) -> np.ndarray | None:
        """Leaf reached by each example (cached by the tree's structure); ``None`` past the cap."""
        key = _key(tree.root)
        if key not in self._leaves:
            try:
                self._leaves[key] = tree.leaf_index(self.grounder, len(self.y), self.max_bindings)
            except GroundingLimit:
                self._leaves[key] = None
        return self._leaves[key]

    def score(self, mapping: Mapping[str, str | None]) -> float:
        """Mean log-likelihood of the target examples under the mapped, re-fitted trees."""
        mapped, _ = map_trees(self.model, {**mapping, **self.fixed})
        key = tuple(_key(t.root) for t in mapped.trees)
        if key not in self._scores:
            self.n_scored += 1
            w = np.ones(len(self.y))
            psi = np.full(len(self.y), initial_potential(self.y, w, mapped.init_rule))
            for tree in mapped.trees:
                leaf = self.leaf_index(tree)
                if leaf is None:
                    # a test of this mapping grounds the target world past max_bindings
                    # rows (shared targets can chain high-fanout predicates): not usable
                    self.n_over_limit += 1
                    psi = None
                    break
                g = gradients(self.y, psi)
                for k, node in enumerate(tree.leaves()):
                    at = leaf == k
                    value = mapped.step * float(g[at].mean()) if at.any() else node.value
                    psi[at] += value
            self._scores[key] = -np.inf if psi is None else -log_loss(self.y, psi)
        return self._scores[key]


def tree_predicate_order(model: RDNBoostModel) -> list[str]:
    """Predicates of constant-free tests, in the order the trees first use them (breadth first).

    ``recursion_<target>`` is not listed: it always maps to the target's own.
    """
    rec = recursion_predicate(model.target)
    order: list[str] = []
    for tree in model.trees:
        queue = [tree.root]
        while queue:
            node = queue.pop(0)
            if node.is_leaf:
                continue
            if all(lit.predicate != EQUALS for lit in node.test) and not any(
                isinstance(a, str) for lit in node.test for a in lit.args
            ):
                for lit in node.test:  # a test may use one predicate twice: list it once
                    if lit.predicate not in order and lit.predicate != rec:
                        order.append(lit.predicate)
            queue += [node.true, node.false]
    return order


def search_tree_mapping(
    model: RDNBoostModel,
    source: RelationalData,
    target: RelationalData,
    scorer: TreeMappingScorer,
    *,
    beam_width: int,
    max_exhaustive: int,
    same_target: bool = False,
) -> tuple[dict[str, str | None], dict[str, str], dict[str, Any]]:
    """The best type-consistent mapping of the trees' predicates (module docstring, step 2).

    Returns the predicate mapping, the type mapping and search statistics.
    """
    scored, search, n_complete = search_mappings(
        source,
        target,
        tree_predicate_order(model),
        scorer,
        beam_width=beam_width,
        max_exhaustive=max_exhaustive,
        same_target=same_target,
    )
    best, mapping, type_map = scored[0]
    mapping = {**mapping, **scorer.fixed}
    if not np.isfinite(best):
        raise IncompatibleTaskError(
            f"every mapping of the {source.name or 'source'} trees grounds a test of the target "
            f"world in more than max_mapping_bindings={scorer.max_bindings} rows"
        )
    info = {
        "search": search,
        "n_mappings_upper_bound": n_complete,
        "n_candidates": len(scored),
        "n_scored": scorer.n_scored,
        "n_over_bindings_limit": scorer.n_over_limit,
        "score": float(best),
        "score_no_tests": float(scorer.score({source.target: target.target})),
    }
    return mapping, type_map, info


# --------------------------------------------------------------------------- revision


def _leaf_values(
    tree: RelationalRegressionTree, leaf: np.ndarray, g: np.ndarray, step: float
) -> np.ndarray:
    """Step times the mean gradient of each leaf's examples (a leaf with none keeps its value)."""
    values = np.array([n.value for n in tree.leaves()], dtype=float)
    for k in range(len(values)):
        at = leaf == k
        if at.any():
            values[k] = step * float(g[at].mean())
    return values


def _set_values(tree: RelationalRegressionTree, values: np.ndarray) -> None:
    for node, v in zip(tree.leaves(), values, strict=True):
        node.value = float(v)


def _paths(tree: RelationalRegressionTree) -> list[tuple[TreeNode, tuple, int]]:
    """Every leaf with the clause of its path (the true tests above it) and its depth."""
    out = []
    stack = [(tree.root, (), 0)]
    while stack:
        node, clause, depth = stack.pop()
        if node.is_leaf:
            out.append((node, clause, depth))
        else:
            stack += [(node.false, clause, depth + 1), (node.true, clause + node.test, depth + 1)]
    return out


def _var_types(clause: tuple, head: tuple[str, ...], types: Mapping[str, tuple]) -> tuple:
    """Types of the clause's variables, head variables first, then in order of appearance."""
    found: dict[int, str] = dict(enumerate(head))
    for lit in clause:
        if lit.predicate == EQUALS:
            continue
        for pos, a in enumerate(lit.args):
            if isinstance(a, int):
                found.setdefault(a, types[lit.predicate][pos])
    return tuple(found[k] for k in sorted(found))


def _prunable(tree: RelationalRegressionTree) -> list[TreeNode]:
    """Inner nodes whose two children are leaves (pruning them keeps a valid tree)."""
    return [n for n in tree.nodes() if not n.is_leaf and n.true.is_leaf and n.false.is_leaf]


def revise_trees(
    model: RDNBoostModel,
    data: RelationalData,
    y: np.ndarray,
    grow: np.ndarray,
    valid: np.ndarray,
    *,
    node_size: int,
    max_leaves: int,
    min_leaf_examples: float,
    max_constants: int,
    max_bindings: int,
    revision_threshold: float,
    max_value_arg_constants: int = 0,
) -> tuple[RDNBoostModel, dict[str, int]]:
    """Prune and expand the revision points of the mapped trees (module docstring, step 3).

    Parameters
    ----------
    model : RDNBoostModel
        Mapped trees over ``data``'s predicates.
    data, y : RelationalData, ndarray
        The target training examples and labels.
    grow, valid : ndarray of int
        Indices of the examples the revisions are fitted on and judged on (disjoint).
    node_size, max_leaves, min_leaf_examples, max_constants, max_bindings,
    max_value_arg_constants
        The node search's settings (as :class:`~.rdn_boost.RDNBoost`).
    revision_threshold : float
        A leaf is a revision point when the variance of its growing examples' gradients
        exceeds this.

    Returns
    -------
    model : RDNBoostModel
        The revised trees, leaves fitted on the growing examples.
    counts : dict
        ``n_pruned``, ``n_expanded``, ``n_revision_points``.
    """
    search = dict(node_size=node_size, max_leaves=max_leaves, min_leaf=min_leaf_examples)
    search |= dict(max_bindings=max_bindings, max_constants=max_constants)
    search["max_value_arg_constants"] = max_value_arg_constants
    # depth is bounded by the revision, one test per point
    r = _Revision(model, data, y, grow, valid, 10**6, search)
    g_data, yg, yv, gg, gv = r.g_data, r.yg, r.yv, r.gg, r.gv
    learner, head, w, init = r.learner, r.head, r.w, r.init
    psi_g, psi_v = np.full(len(grow), init), np.full(len(valid), init)
    counts = {"n_pruned": 0, "n_expanded": 0, "n_revision_points": 0}
    trees = []

    def fitted(tree: RelationalRegressionTree, g: np.ndarray) -> tuple[np.ndarray, float]:
        """Leaf values on the growing part and the validation loss up to this tree."""
        values = _leaf_values(tree, tree.leaf_index(gg, len(grow)), g, model.step)
        v_leaf = tree.leaf_index(gv, len(valid))
        return values, log_loss(yv, psi_v + values[v_leaf])

    for source_tree in model.trees:
        tree = RelationalRegressionTree(
            source_tree.root.copy(), source_tree.target, source_tree.arity
        )
        g = gradients(yg, psi_g)
        values, best = fitted(tree, g)
        _set_values(tree, values)
        # prune: bottom-up candidates, each kept when the validation loss drops
        changed = True
        while changed:
            changed = False
            for node in _prunable(tree):
                counts["n_revision_points"] += 1
                saved = (node.test, node.true, node.false)
                node.test, node.true, node.false = (), None, None
                values, loss = fitted(tree, g)
                if loss < best - 1e-12:
                    best, changed = loss, True
                    counts["n_pruned"] += 1
                    _set_values(tree, values)
                    break
                node.test, node.true, node.false = saved
        # expand: leaves whose examples the tree fits badly
        leaf_at = tree.leaf_index(gg, len(grow))
        for k, (leaf, clause, depth) in enumerate(_paths_in_leaf_order(tree)):
            if len(tree.leaves()) >= max_leaves:
                break
            idx = np.flatnonzero(leaf_at == k)
            if len(idx) < 2 * min_leaf_examples or np.var(g[idx]) <= revision_threshold:
                continue
            counts["n_revision_points"] += 1
            point = _Open(leaf, idx, clause, _var_types(clause, head, g_data.predicates), depth)
            learner.best_split(point, g, w)
            if point.best is None:
                continue
            _, test, _ = point.best
            leaf.test, leaf.true, leaf.false = test, TreeNode(), TreeNode()
            values, loss = fitted(tree, g)
            if loss < best - 1e-12:
                best = loss
                counts["n_expanded"] += 1
                _set_values(tree, values)
            else:
                leaf.test, leaf.true, leaf.false = (), None, None
        values = _leaf_values(tree, tree.leaf_index(gg, len(grow)), g, model.step)
        _set_values(tree, values)
        psi_g += values[tree.leaf_index(gg, len(grow))]
        psi_v += values[tree.leaf_index(gv, len(valid))]
        trees.append(tree)
    return r.model_of(trees), counts


class _Revision:
    """What both revision searches start from.

    The growing and validation parts, the node search over the growing examples, and
    ``psi_0`` of the growing labels.
    """

    def __init__(
        self,
        model: RDNBoostModel,
        data: RelationalData,
        y: np.ndarray,
        grow: np.ndarray,
        valid: np.ndarray,
        max_depth: int,
        search: dict[str, Any],
    ) -> None:
        y = np.asarray(y, dtype=float)
        self.g_data = data.subset(grow)
        self.yg, self.yv = y[grow], y[valid]
        self.gg, self.gv = Grounder(self.g_data), Grounder(data.subset(valid))
        search = dict(search)
        max_constants = search.pop("max_constants")
        constants = value_types(
            self.g_data, max_constants, self.yg, search.pop("max_value_arg_constants")
        )
        modes = infer_modes(self.g_data, set(constants))
        self.learner = _TreeLearner(self.gg, modes, constants, max_depth=max_depth, **search)
        self.learner.start()
        self.head = tuple(data.predicates[data.target])
        self.w = np.ones(len(grow))
        self.init = initial_potential(self.yg, self.w, model.init_rule)
        self.model = model

    def model_of(self, trees: list[RelationalRegressionTree]) -> RDNBoostModel:
        """The revised trees as a model (the source model's step, rule and recursion)."""
        return replace(self.model, trees=trees, init=self.init, info={}, evidence=())


def worst_leaf(tree: RelationalRegressionTree, leaf_at: np.ndarray, y: np.ndarray) -> tuple:
    """The revision point of TreeBoostler's released code: the least pure leaf.

    A leaf is a revision point when the training examples reaching it are not all of one
    class (a leaf no example reaches counts as purity 0). Returns ``(k, purity, impure)``:
    the index of the least pure leaf (the first of equals, leaf order), its purity, and the
    set of impure leaf indices; ``k`` is None when every leaf is pure.
    """
    purity, impure = [], set()
    for k in range(len(tree.leaves())):
        at = leaf_at == k
        n, pos = int(at.sum()), float(y[at].sum())
        p = max(pos, n - pos) / n if n else 0.0
        purity.append(p)
        if p < 1.0:
            impure.add(k)
    if not impure:
        return None, 1.0, impure
    k = min(impure, key=lambda j: (purity[j], j))
    return k, purity[k], impure


def revise_trees_by_purity(
    model: RDNBoostModel,
    data: RelationalData,
    y: np.ndarray,
    grow: np.ndarray,
    valid: np.ndarray,
    *,
    max_depth: int,
    max_iterations: int,
    criterion: str = "auc_roc",
    node_size: int,
    max_leaves: int,
    min_leaf_examples: float,
    max_constants: int,
    max_bindings: int,
    max_value_arg_constants: int = 0,
) -> tuple[RDNBoostModel, dict[str, int]]:
    """Theory revision as TreeBoostler's released code does it (``revision_points="purity"``).

    Each iteration builds one candidate model from the current one, tree by tree in
    boosting order (each tree's gradients come from the candidate's trees before it, as
    BoostSRL's refinement re-learns them): the tree's least pure leaf (:func:`worst_leaf`)
    is its revision point. When no growing example reaches it, or its sibling is an impure
    leaf too, their parent is pruned to a leaf (a parent that is the root: the tree is
    learned again from scratch); otherwise a subtree is grown from it by the RDN-Boost node
    search, down to ``max_depth`` and up to ``max_leaves`` leaves for the tree. Leaves are
    fitted on the growing examples. The candidate replaces the current model only when its
    AUC-ROC on the validation examples is higher (the released code's criterion; at first
    the current model is the mapped trees with re-fitted leaves); the search stops at the
    first candidate that is not better, or after ``max_iterations``.

    Parameters are those of :func:`revise_trees`, with ``max_depth`` (the trees' depth
    limit), ``max_iterations`` (the released code's ``max_revision_iterations``) and
    ``criterion``: ``auc_roc`` (the released code's) or ``cll`` (the validation
    log-likelihood, which the paper names for choosing between revisions).

    Returns
    -------
    model : RDNBoostModel
        The best model found, leaves fitted on the growing examples.
    counts : dict
        ``n_pruned``, ``n_expanded``, ``n_revision_points`` (of the accepted candidates),
        ``n_revision_iterations`` (candidates built), ``n_relearned`` (trees learned again).
    """
    search = dict(node_size=node_size, max_leaves=max_leaves, min_leaf=min_leaf_examples)
    search |= dict(max_bindings=max_bindings, max_constants=max_constants)
    search["max_value_arg_constants"] = max_value_arg_constants
    r = _Revision(model, data, y, grow, valid, max_depth, search)
    g_data, yg, yv, gg, gv = r.g_data, r.yg, r.yv, r.gg, r.gv
    learner, head, w, init = r.learner, r.head, r.w, r.init
    both = 0 < yv.sum() < len(yv)

    def score(psi_v: np.ndarray) -> float:
        # a validation part of one class has no AUC: the log-likelihood judges instead
        if criterion == "auc_roc" and both:
            return roc_auc(yv, psi_v)
        return -log_loss(yv, psi_v)

    def candidate(trees, revise: bool) -> tuple[list, float, dict[str, int]]:
        psi_g, psi_v = np.full(len(grow), init), np.full(len(valid), init)
        out, counts = [], {"n_pruned": 0, "n_expanded": 0, "n_revision_points": 0}
        counts["n_relearned"] = 0
        for old in trees:
            tree = RelationalRegressionTree(old.root.copy(), old.target, old.arity)
            g = gradients(yg, psi_g)
            if revise:
                _revise_one(tree, g, counts)
            leaf_g = tree.leaf_index(gg, len(grow))
            values = _leaf_values(tree, leaf_g, g, model.step)
            _set_values(tree, values)
            psi_g += values[leaf_g]
            psi_v += values[tree.leaf_index(gv, len(valid))]
            out.append(tree)
        return out, score(psi_v), counts

    def _revise_one(tree: RelationalRegressionTree, g: np.ndarray, counts: dict) -> None:
        leaf_at = tree.leaf_index(gg, len(grow))
        k, purity, impure = worst_leaf(tree, leaf_at, yg)
        if k is None:
            return
        counts["n_revision_points"] += 1
        paths = _paths_in_leaf_order(tree)
        leaf = paths[k][0]
        parent = next((n for n in tree.nodes() if n.true is leaf or n.false is leaf), None)
        sibling = None if parent is None else (parent.false if parent.true is leaf else parent.true)
        sibling_bad = (
            sibling is not None
            and sibling.is_leaf
            and any(p[0] is sibling for j, p in enumerate(paths) if j in impure)
        )
        if parent is not None and (purity == 0.0 or sibling_bad):
            if parent is tree.root:  # the released code learns such a tree again
                tree.root, _ = learner.grow(g, w)
                counts["n_relearned"] += 1
            else:
                parent.test, parent.true, parent.false = (), None, None
                counts["n_pruned"] += 1
            return
        _, clause, depth = paths[k]
        idx = np.flatnonzero(leaf_at == k)
        point = _Open(leaf, idx, clause, _var_types(clause, head, g_data.predicates), depth)
        budget = max_leaves - len(tree.leaves()) + 1
        if budget > 1 and len(learner.expand([point], g, w, budget)) > 1:
            counts["n_expanded"] += 1

    current, best, _ = candidate(model.trees, revise=False)
    totals = {"n_pruned": 0, "n_expanded": 0, "n_revision_points": 0, "n_relearned": 0}
    n_iter = 0
    for _ in range(max_iterations):
        n_iter += 1
        trees, value, counts = candidate(current, revise=True)
        if not value > best:
            break
        current, best = trees, value
        for key in totals:
            totals[key] += counts[key]
    return r.model_of(current), {**totals, "n_revision_iterations": n_iter}


def _paths_in_leaf_order(tree: RelationalRegressionTree) -> list[tuple[TreeNode, tuple, int]]:
    """:func:`_paths` in the order of :meth:`RelationalRegressionTree.leaves` (leaf indices)."""
    by_id = {id(n): p for p in _paths(tree) for n in [p[0]]}
    return [by_id[id(n)] for n in tree.leaves()]


def split_validation(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple:
    """Seeded stratified split of example indices into growing and validation parts."""
    grow, valid = [], []
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_valid = int(round(fraction * len(idx)))
        n_valid = min(max(n_valid, 1), len(idx) - 1) if len(idx) >= 2 else 0
        valid.append(idx[:n_valid])
        grow.append(idx[n_valid:])
    return np.sort(np.concatenate(grow)), np.sort(np.concatenate(valid))


# --------------------------------------------------------------------------- the method


@register_method("treeboostler")
class TreeBoostler(RelationalClassifierMixin, TransferMethod):
    """RDN-Boost on the source, trees mapped to the target's predicates, then revised.

    Parameters
    ----------
    revision : {"full", "weights", "none"}, default="full"
        ``none``: mapped trees with the source leaf values; ``weights``: leaf values
        re-learned on the target (TreeBoostler's "mapping + parameter learning"); ``full``:
        also prune and expand the revision points (theory revision).
    n_trees, max_depth, node_size, max_leaves, min_leaf_examples, step, init, neg_pos_ratio,
    max_constants, max_value_arg_constants, max_bindings
        RDN-Boost's, for the source model and the expansions
        (see :class:`~tlbench.methods.relational.rdn_boost.RDNBoost`). ``neg_pos_ratio`` also
        subsamples the target training negatives for the mapping score and the revision.
    beam_width : int, default=5
        Beam width of the mapping search when exhaustive search is too large.
    max_exhaustive : int, default=5000
        Largest number of complete mappings enumerated exhaustively.
    max_mapping_bindings : int, default=20_000_000
        With ``arg_permutations`` or ``same_target``: the most grounding rows one test of a
        candidate mapping may produce while it is scored; a mapping past it is not chosen (a
        shared target can chain a high-fanout predicate with itself: 419 million rows on NELL
        Finances -> Sports). About 1.3 GB at eight variables.
    arg_permutations : bool, default=False
        Also map a binary predicate to a target predicate read with its arguments swapped
        (the recorded runs' ``searchArgPermutation``; :func:`.predicate_mapping.with_inverses`).
    same_target : bool, default=False
        Let two source predicates map to one target predicate (``allowSameTargetMap``).
    recursion : bool, default=False
        The source trees and the expansions may test ``recursion_<target>``, the target's
        other atoms (BoostSRL's ``recursion=true``; see :class:`~.rdn_boost.RDNBoost`); the
        source's maps to the target's. The target training positives are the known atoms
        when the mapped trees are scored, revised and used.
    validation_fraction : float, default=0.3
        Part of the target training examples (stratified) that judges revisions.
    revision_threshold : float, default=0.0025
        A leaf is a revision point when its gradients' variance exceeds this (BoostSRL's
        regression trees stop splitting below a comparable variance).
    revision_points : {"variance", "purity"}, default="variance"
        ``variance``: :func:`revise_trees` (every revision point tried in turn, one test per
        expansion, each judged by the validation log-loss); ``purity``: TreeBoostler's
        released revision loop (:func:`revise_trees_by_purity`: each tree's least pure
        leaf, pruned or grown into a subtree, whole candidates judged by validation AUC-ROC).
    max_revision_iterations : int, default=10
        With ``revision_points="purity"``: the most candidates built (the released code's
        ``max_revision_iterations``).
    recursive_inference, gibbs_samples, gibbs_burn_in
        With ``recursion``: how the final trees fill in the atoms they predict (as
        :class:`~.rdn_boost.RDNBoost`; the mapping score and the revision use iterative
        classification on the training examples, whose other labels are known).
    revision_criterion : {"auc_roc", "cll"}, default="auc_roc"
        With ``revision_points="purity"``: what a candidate must improve on the validation
        examples (the released code: AUC-ROC; ``cll``: the log-likelihood).
    random_state : int or None, default=0
        Seeds the negative subsamples and the validation split.

    Attributes
    ----------
    source_model_ : RDNBoostModel
    mapping_ : dict of str to str or None
    type_mapping_ : dict of str to str
    model_ : RDNBoostModel
        The final trees on the target.
    target_predicate_ : str
    diagnostics_ : dict
        See the module docstring.

    Raises
    ------
    IncompatibleTaskError
        From ``fit``, when the head predicates differ in arity or types, or when no test node
        survives the mapping (the mapped model would be the bias alone).
    """

    family: ClassVar[str] = "relational"
    final_classifier: ClassVar[str] = "boosted relational regression trees"
    supports: ClassVar[frozenset[str]] = frozenset({"relational"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = (
        "Azevedo Santos, Paes, Zaverucha, Transfer learning by mapping and revising boosted "
        "relational dependency networks, Machine Learning 109, 2020 (TreeBoostler)"
    )

    def __init__(
        self,
        *,
        revision: str = "full",
        n_trees: int = 10,
        max_depth: int = 3,
        node_size: int = 2,
        max_leaves: int = 8,
        min_leaf_examples: float = 2.0,
        step: float = 1.0,
        init: str = "zero",
        neg_pos_ratio: float | None = 2.0,
        max_constants: int = 10,
        max_value_arg_constants: int = 0,
        max_bindings: int = 1_000_000,
        max_mapping_bindings: int = 20_000_000,
        beam_width: int = 5,
        max_exhaustive: int = 5000,
        arg_permutations: bool = False,
        same_target: bool = False,
        recursion: bool = False,
        validation_fraction: float = 0.3,
        revision_threshold: float = 0.0025,
        revision_points: str = "variance",
        max_revision_iterations: int = 10,
        revision_criterion: str = "auc_roc",
        recursive_inference: str = "iterative",
        gibbs_samples: int = 20,
        gibbs_burn_in: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.revision = revision
        self.n_trees = n_trees
        self.max_depth = max_depth
        self.node_size = node_size
        self.max_leaves = max_leaves
        self.min_leaf_examples = min_leaf_examples
        self.step = step
        self.init = init
        self.neg_pos_ratio = neg_pos_ratio
        self.max_constants = max_constants
        self.max_value_arg_constants = max_value_arg_constants
        self.max_bindings = max_bindings
        self.max_mapping_bindings = max_mapping_bindings
        self.beam_width = beam_width
        self.max_exhaustive = max_exhaustive
        self.arg_permutations = arg_permutations
        self.same_target = same_target
        self.recursion = recursion
        self.validation_fraction = validation_fraction
        self.revision_threshold = revision_threshold
        self.revision_points = revision_points
        self.max_revision_iterations = max_revision_iterations
        self.revision_criterion = revision_criterion
        self.recursive_inference = recursive_inference
        self.gibbs_samples = gibbs_samples
        self.gibbs_burn_in = gibbs_burn_in
        self.random_state = random_state

    def _target_view(self, X: RelationalData) -> RelationalData:
        return with_inverses(X) if self.arg_permutations else X

    def _check_params(self) -> None:
        from .rdn_boost import RDNBoost

        boost = {k: getattr(self, k) for k in RDNBoost().get_params() if k != "modes"}
        RDNBoost(**boost)._check_params()  # the same messages as rdn_boost's
        if self.revision not in REVISIONS:
            raise ConfigError(f"method.revision must be one of {REVISIONS}, got {self.revision!r}")
        if self.beam_width < 1 or self.max_exhaustive < 1:
            raise ConfigError("method.beam_width and max_exhaustive must be >= 1")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(
                f"method.validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if self.revision_threshold < 0:
            raise ConfigError("method.revision_threshold must be >= 0")
        if self.revision_points not in REVISION_POINTS:
            raise ConfigError(
                f"method.revision_points must be one of {REVISION_POINTS}, "
                f"got {self.revision_points!r}"
            )
        if self.revision_criterion not in ("auc_roc", "cll"):
            raise ConfigError(
                "method.revision_criterion must be 'auc_roc' or 'cll', "
                f"got {self.revision_criterion!r}"
            )
        if self.max_revision_iterations < 1:
            raise ConfigError("method.max_revision_iterations must be >= 1")

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Learn the source trees, search the mapping, revise on the labeled target examples."""
        self.check_task(task)
        self._check_params()
        source, target = task.source.labeled(), task.target.labeled()
        check_examples(source.X, source.y, "source")
        check_examples(target.X, target.y, "target")
        target = replace(target, X=self._target_view(target.X))
        rng = np.random.default_rng(self.random_state)
        times = {}
        t0 = time.perf_counter()
        keep = subsample_negatives(np.asarray(source.y), self.neg_pos_ratio, rng)
        boost = {
            "n_trees": self.n_trees,
            "max_depth": self.max_depth,
            "node_size": self.node_size,
            "max_leaves": self.max_leaves,
            "min_leaf_examples": self.min_leaf_examples,
            "step": self.step,
            "init": self.init,
            "max_constants": self.max_constants,
            "max_value_arg_constants": self.max_value_arg_constants,
            "max_bindings": self.max_bindings,
        }
        self.source_model_ = learn_rdn_boost(
            source.X.subset(keep),
            np.asarray(source.y)[keep],
            recursion=bool(self.recursion),
            **boost,
        )
        times["source_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        keep = subsample_negatives(np.asarray(target.y), self.neg_pos_ratio, rng)
        data, y = target.X.subset(keep), np.asarray(target.y)[keep]
        # with recursion the target training positives are the known target atoms (each
        # example reads the others'), and the source's recursion predicate maps to the target's
        known = positives(data, y) if self.recursion else ()
        fixed = {}
        world = data
        if self.recursion:
            world = with_recursion(data, known)
            fixed = {recursion_predicate(source.X.target): recursion_predicate(data.target)}
        # a shared or permuted target can chain a high-fanout predicate with itself, which
        # grounds the world combinatorially: those searches skip such mappings (the bijective
        # default search stays uncapped, as the tables it produced were)
        wide = self.arg_permutations or self.same_target
        cap = self.max_mapping_bindings if wide else None
        scorer = TreeMappingScorer(self.source_model_, world, y, cap, fixed)
        self.mapping_, self.type_mapping_, search = search_tree_mapping(
            self.source_model_,
            source.X,
            target.X,
            scorer,
            beam_width=self.beam_width,
            max_exhaustive=self.max_exhaustive,
            same_target=bool(self.same_target),
        )
        mapped, n_dropped = map_trees(self.source_model_, self.mapping_)
        times["mapping_seconds"] = time.perf_counter() - t0
        n_source_nodes = sum(t.n_tests for t in self.source_model_.trees)
        n_mapped_nodes = sum(t.n_tests for t in mapped.trees)
        if n_mapped_nodes == 0:
            # every mapped tree is a single leaf: a constant score, not a result of transfer
            unmapped = sorted(p for p, v in self.mapping_.items() if v is None)
            raise IncompatibleTaskError(
                f"no test node of the {source.X.name or 'source'} trees of {source.X.target!r} "
                f"survives the mapping to {target.X.target!r} ({n_source_nodes} source nodes; "
                f"unmapped predicates: {', '.join(unmapped) or 'none'}; tests with constants "
                "never map); treeboostler would report an empty model"
            )
        t0 = time.perf_counter()
        counts = {"n_pruned": 0, "n_expanded": 0, "n_revision_points": 0}
        kept = self.revision
        if self.revision == "none":
            model = replace(mapped, evidence=known)  # known labels are evidence, not learning
        else:
            weights = mapped.refit_leaves(data, y)
            model = weights
            if self.revision == "full":
                grow, valid = split_validation(y, self.validation_fraction, rng)
                search = {
                    "node_size": self.node_size,
                    "max_leaves": self.max_leaves,
                    "min_leaf_examples": self.min_leaf_examples,
                    "max_constants": self.max_constants,
                    "max_value_arg_constants": self.max_value_arg_constants,
                    "max_bindings": self.max_bindings,
                }
                if self.revision_points == "purity":
                    revised, counts = revise_trees_by_purity(
                        weights,
                        world,
                        y,
                        grow,
                        valid,
                        max_depth=self.max_depth,
                        max_iterations=self.max_revision_iterations,
                        criterion=self.revision_criterion,
                        **search,
                    )
                else:
                    revised, counts = revise_trees(
                        weights,
                        world,
                        y,
                        grow,
                        valid,
                        revision_threshold=self.revision_threshold,
                        **search,
                    )
                revised = revised.refit_leaves(data, y)
                fit_w = log_loss(y, weights.predict_logits(data))
                fit_r = log_loss(y, revised.predict_logits(data))
                if fit_r <= fit_w:
                    model = revised
                else:  # never a worse training fit than the re-fitted mapped trees
                    kept = "weights (the revised trees fitted the training examples worse)"
        times["revision_seconds"] = time.perf_counter() - t0
        self.model_ = with_inference(model, self)
        self.target_predicate_ = target.X.target
        self.classes_ = np.array([0, 1])
        self.diagnostics_ = {
            "mapping": dict(self.mapping_),
            "type_mapping": dict(self.type_mapping_),
            "unmapped_predicates": sorted(p for p, v in self.mapping_.items() if v is None),
            "n_source_trees": len(self.source_model_.trees),
            "n_source_nodes": n_source_nodes,
            "n_mapped_trees": sum(t.n_tests > 0 for t in mapped.trees),
            "n_mapped_nodes": n_mapped_nodes,
            "n_nodes_dropped_by_mapping": n_dropped,
            **search,
            "revision": self.revision,
            "revision_kept": kept,
            **counts,
            "n_final_nodes": sum(t.n_tests for t in model.trees),
            "recursion": bool(self.recursion),
            "n_source_recursive_nodes": count_recursive_nodes(self.source_model_),
            "n_final_recursive_nodes": count_recursive_nodes(model),
            "train_log_loss": round(log_loss(y, model.predict_logits(data)), 5),
            "n_train_examples": len(y),
            "source_trees": self.source_model_.describe(),
            "trees": self.model_.describe(),
            **{k: round(v, 4) for k, v in times.items()},
        }
        return self
