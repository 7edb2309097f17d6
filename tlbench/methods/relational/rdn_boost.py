"""RDN-Boost: a relational dependency network learned by functional gradient boosting.

Natarajan, Khot, Kersting, Gutmann, Shavlik, "Gradient-based boosting for statistical
relational learning: the relational dependency network case", Machine Learning 86, 2012
(https://doi.org/10.1007/s10994-011-5244-9). The conditional distribution of the target atom
given the rest of the world is ``P(t(a) = 1 | world) = sigmoid(psi(a))`` with
``psi = psi_0 + sum_m T_m``, where every ``T_m`` is a relational regression tree fitted to the
functional gradient of the log-likelihood, ``Delta_m(a) = I(y_a = 1) - P(y_a = 1 | psi_{m-1})``.

A relational regression tree is a TILDE-style first-order decision tree (Blockeel & De Raedt,
"Top-down induction of first-order logical decision trees", AI 101, 1998): an inner node holds
a conjunction of literals that extends the clause of the path to it (the true tests of its
ancestors); an example goes to the true branch when the extended clause has a grounding for it,
to the false branch otherwise (the false branch keeps the parent's clause and variables). Each
node's test is the conjunction of at most ``node_size`` literals, each sharing at least one
variable with the clause, chosen to minimise the squared error of the gradients around the two
branch means; leaves hold the mean gradient of their examples. This model is the source model
that TreeBoostler (Azevedo Santos, Paes, Zaverucha, "Transfer learning by mapping and revising
boosted relational dependency networks", Machine Learning 109, 2020) transfers: the trees are
public data structures (:class:`Literal`, :class:`TreeNode`, :class:`RelationalRegressionTree`,
:class:`RDNBoostModel`) with :meth:`RDNBoostModel.rename` (a predicate mapping) and
:meth:`RDNBoostModel.refit_leaves` (re-learning the leaf values on other data).

Modes
-----
Literals follow mode declarations: ``+`` an argument bound to a variable already in the
clause, ``-`` a new variable, ``#`` a constant. ``modes`` takes BoostSRL ``mode:`` lines (or a
BoostSRL zip / background file holding them). Without them, modes are inferred from the
argument types of the data (declared or inferred by the dataset loader): every argument may be
``+`` or ``-`` (at least one ``+``), and an argument of a *value type* (at most
``max_constants`` constants, e.g. genres, course levels, account types; if
``max_value_arg_constants`` is set, also a value argument of the target with at most that
many: a type no other predicate uses, such as Yeast's protein class) may also be ``#``; a
head argument of a value type may be tested against each of its constants (``B = fan``). A
type's constants are read from the facts and the positive examples (a generated negative
example is not evidence of what a type holds).

Deviations from the paper (and from BoostSRL)
---------------------------------------------
- ``psi_0 = 0`` by default, as in the paper; ``init="log_odds"`` starts from the training
  prior and ``init="boostsrl"`` from BoostSRL's fixed ``-1.8`` (what its tree files imply).
- Node search: every single literal allowed by the modes is scored; a conjunction of two
  literals (``node_size=2``) is scored only when the second literal uses a variable the first
  one introduced (the lookahead that makes ``movie(C, A), movie(C, B)`` findable), not by
  BoostSRL's beam search over clause extensions. Ties go to the shorter, earlier test.
- Trees grow best-first (largest error reduction first) up to ``max_leaves`` leaves and
  ``max_depth`` levels of tests; a split needs ``min_leaf_examples`` (weighted) examples on
  each side (BoostSRL's ``minPosCoverage``, 2 by default). Clause semantics are existential
  (a grounding exists), as in BoostSRL's RDN trees; grounding counts are not used.
- Negatives are subsampled once per fit to ``neg_pos_ratio`` per positive (BoostSRL's
  ``-negPosRatio``, default 2), seeded by ``random_state``; ``None`` keeps all of them.
- Recursion is off by default (BoostSRL's ``recursion=false``). With ``recursion=True`` the
  target's other atoms are facts of ``recursion_<target>`` (BoostSRL's name), with the
  target's argument types: while learning they are the training positives, and an example
  never grounds a test with an atom of its own subject (first argument; see
  :func:`with_recursion`: BoostSRL only leaves out the example's own atom); when
  predicting they are the training positives, and the atoms being predicted are filled in
  by default by at most five rounds of iterative classification with hard labels (stopping
  at a fixed point), where BoostSRL and the RDN papers sample (Gibbs);
  ``recursive_inference="gibbs"`` samples, with every atom drawn at once from the previous
  sweep's conditionals (a synchronous update: an approximation of the one-atom-at-a-time
  sampler, which would walk the trees once per atom). The recorded
  TreeBoostler runs also added every fold's positives, test folds included, as facts; here
  no test label is read. One target predicate, no joint inference over several.
- A candidate test whose groundings would exceed ``max_bindings`` rows is skipped during
  learning (counted in ``diagnostics_["skipped_candidates"]``); prediction has no such limit.
"""

from __future__ import annotations

import logging
import re
import time
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from scipy.special import expit, log_expit

from ...errors import ConfigError, DataError
from ...registry import register_method
from ...task import RelationalData, TransferTask
from ..base import TransferMethod
from .learner import RelationalClassifierMixin, check_examples, positives, value_arg_types

logger = logging.getLogger(__name__)

#: The predicate of a head-constant test ``Literal("=", (1, "fan"))``: ``B = fan``.
EQUALS = "="
#: BoostSRL's fixed initial potential (``init="boostsrl"``).
BOOSTSRL_INIT = -1.8
INITS: tuple[str, ...] = ("zero", "log_odds", "boostsrl")
#: Examples walked down a tree at once by :meth:`RelationalRegressionTree.leaf_index`.
LEAF_CHUNK = 1024
#: Rows one slice of a projected join may produce (:meth:`Grounder.extend`).
JOIN_BUDGET = 16_000_000
#: Projected rows one join of a chunked tree walk may hold before the walk splits its chunk
#: of examples in two (the rows grow with the examples walked together); 2 GiB at eight
#: int64 columns. It bounds one join, not the walk: the slices being joined and the rows of
#: the path above come on top (a NELL Sports -> Finances recursive walk still exceeded a
#: 13 GB address cap with it, and an 11 GB one at twice it).
ROW_BUDGET = 2 * JOIN_BUDGET
#: BoostSRL's name prefix for the target's other atoms read as facts (``recursion=true``).
RECURSION_PREFIX = "recursion_"
#: Rounds of iterative classification when a recursive model predicts.
RECURSION_ROUNDS = 5
#: How a recursive model fills in the atoms it predicts.
INFERENCES = ("iterative", "gibbs")

Arg = int | str  # an int is a variable (0 .. arity-1: the head's), a str a constant


# --------------------------------------------------------------------------- data structures


def _var_name(k: int) -> str:
    return chr(65 + k) if k < 26 else f"V{k}"


@dataclass(frozen=True)
class Literal:
    """One positive literal of a clause body, e.g. ``movie(C, A)``.

    Parameters
    ----------
    predicate : str
        The predicate, or :data:`EQUALS` for a test of a head variable against a constant.
    args : tuple of int or str
        Variables as integers (``0 .. arity-1`` are the head's arguments ``A, B``; larger ones
        were introduced by earlier literals of the clause, numbered in order of appearance) and
        constants as strings.
    """

    predicate: str
    args: tuple[Arg, ...]

    def variables(self) -> set[int]:
        """The variables the literal uses."""
        return {a for a in self.args if isinstance(a, int)}

    def rename(self, mapping: Mapping[str, str]) -> Literal:
        """The literal with its predicate renamed (kept when not in ``mapping``)."""
        if self.predicate == EQUALS:
            return self
        return Literal(mapping.get(self.predicate, self.predicate), self.args)

    def describe(self) -> str:
        """Prolog-like text: ``movie(C,A)``, ``B = fan``."""
        text = [_var_name(a) if isinstance(a, int) else _constant_text(a) for a in self.args]
        if self.predicate == EQUALS:
            return f"{text[0]} = {text[1]}"
        return f"{self.predicate}({','.join(text)})"


def _constant_text(c: str) -> str:
    return c if re.fullmatch(r"[a-z0-9][A-Za-z0-9_]*", c) else f'"{c}"'


@dataclass
class TreeNode:
    """A node of a relational regression tree.

    Parameters
    ----------
    test : tuple of Literal
        The conjunction added to the path's clause (empty for a leaf).
    true : TreeNode or None
        Where examples with a grounding of the extended clause go (``None`` for a leaf).
    false : TreeNode or None
        Where the others go; it keeps the parent's clause (``None`` for a leaf).
    value : float
        A leaf's contribution to ``psi`` (step times the mean gradient of its examples).
    n_examples : int
        Training examples that reached the node.
    """

    test: tuple[Literal, ...] = ()
    true: TreeNode | None = None
    false: TreeNode | None = None
    value: float = 0.0
    n_examples: int = 0

    @property
    def is_leaf(self) -> bool:
        """Whether the node is a leaf."""
        return not self.test

    def copy(self) -> TreeNode:
        """A deep copy."""
        if self.is_leaf:
            return replace(self)
        return replace(self, true=self.true.copy(), false=self.false.copy())


@dataclass
class RelationalRegressionTree:
    """A relational regression tree for the atoms ``target(A, B, ...)``.

    Parameters
    ----------
    root : TreeNode
        The root (a leaf for a tree that found no useful test).
    target : str
        The predicate whose atoms it scores.
    arity : int
        The target's number of arguments (the head variables ``0 .. arity-1``).
    """

    root: TreeNode
    target: str
    arity: int

    def nodes(self) -> Iterator[TreeNode]:
        """Every node, depth-first, true branch first."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            if not node.is_leaf:
                stack += [node.false, node.true]

    def leaves(self) -> list[TreeNode]:
        """The leaves in depth-first order (true branch first): the order of leaf indices."""
        return [n for n in self.nodes() if n.is_leaf]

    @property
    def n_tests(self) -> int:
        """Number of inner (test) nodes."""
        return sum(not n.is_leaf for n in self.nodes())

    def predicates(self) -> set[str]:
        """Predicates the tests use (not :data:`EQUALS`)."""
        return {lit.predicate for n in self.nodes() for lit in n.test if lit.predicate != EQUALS}

    def rename(self, mapping: Mapping[str, str]) -> RelationalRegressionTree:
        """A copy with predicates (and the target) renamed by ``mapping``."""
        root = self.root.copy()
        stack = [root]
        while stack:
            node = stack.pop()
            if not node.is_leaf:
                node.test = tuple(lit.rename(mapping) for lit in node.test)
                stack += [node.true, node.false]
        return RelationalRegressionTree(root, mapping.get(self.target, self.target), self.arity)

    def describe(self) -> list[str]:
        """The tree as indented text, one line per node."""
        head = f"{self.target}({','.join(_var_name(k) for k in range(self.arity))})"
        lines: list[str] = []

        def walk(node: TreeNode, indent: str, label: str) -> None:
            if node.is_leaf:
                lines.append(f"{indent}{label}{node.value:+.4f}  (n={node.n_examples})")
                return
            test = ", ".join(lit.describe() for lit in node.test)
            lines.append(f"{indent}{label}{test} ?  (n={node.n_examples})")
            walk(node.true, indent + "  ", "yes: ")
            walk(node.false, indent + "  ", "no:  ")

        lines.append(f"{head} :-")
        walk(self.root, "  ", "")
        return lines

    def leaf_index(
        self, grounder: Grounder, n: int, cap: int | None = None, project: bool = True
    ) -> np.ndarray:
        """For each of the ``n`` examples of ``grounder``, the index of the leaf it reaches.

        ``cap``: the most grounding rows one test may produce; beyond it
        :class:`GroundingLimit` is raised (a mapping search uses it to skip a mapping whose
        tests would ground the target world combinatorially).

        Rows carry only what the rest of the path needs: a literal whose new variables no
        later test uses is a semi-join, and the variables the true branch never reads are
        projected out (and the rows deduplicated) before it, so a chain of fan-out joins
        (``follows`` after ``follows``) does not multiply the rows. Without a cap the examples
        are also walked ``LEAF_CHUNK`` at a time, to bound the memory of one walk.
        ``project=False`` carries every grounding down in one walk: the plain walk, kept as
        the reference that the projected one is tested and benchmarked against.
        """
        out = np.full(n, -1, dtype=np.int64)
        seen = [0]  # leaves numbered in the order walk() reaches them: that of leaves()
        below: dict[int, set[int]] = {}  # id(node) -> variables its subtree's tests use

        def uses(node: TreeNode) -> set[int]:
            if id(node) not in below:
                own = set().union(*(lit.variables() for lit in node.test))
                below[id(node)] = own if node.is_leaf else own | uses(node.true) | uses(node.false)
            return below[id(node)]

        def walk(node: TreeNode, rows: np.ndarray, examples: np.ndarray, budget: int | None):
            if node.is_leaf:
                out[examples] = seen[0]
                seen[0] += 1
                return
            needed = uses(node.true) if project else None
            ext = grounder.extend(rows, node.test, cap, needed=needed, budget=budget)
            hit = np.zeros(n, dtype=bool)
            hit[ext[:, 0]] = True
            walk(node.true, ext, examples[hit[examples]], budget)
            walk(node.false, rows[~hit[rows[:, 0]]], examples[~hit[examples]], budget)

        def chunk(lo: int, hi: int) -> None:
            seen[0] = 0
            if cap is not None or not project:
                return walk(self.root, head[lo:hi], np.arange(lo, hi), None)
            try:  # a single example is walked whatever it grounds
                walk(self.root, head[lo:hi], np.arange(lo, hi), ROW_BUDGET if hi - lo > 1 else None)
            except _RowBudget:  # the leaves it reached are written again
                mid = (lo + hi) // 2
                chunk(lo, mid)
                chunk(mid, hi)

        head = grounder.head_rows()
        # with a cap, one walk over every example: the cap bounds the rows of the whole set
        step = n if cap is not None or not project else LEAF_CHUNK
        for lo in range(0, n, max(step, 1)):
            chunk(lo, min(lo + step, n))
        return out


@dataclass
class RDNBoostModel:
    """The boosted trees of one target predicate: ``P(t = 1) = sigmoid(init + sum_m T_m)``.

    Parameters
    ----------
    target : str
        The target predicate.
    arity : int
        Its number of arguments.
    trees : list of RelationalRegressionTree
        The boosted trees, in order.
    init : float
        ``psi_0``.
    step : float
        The step length the leaf values were scaled by (kept for :meth:`refit_leaves`).
    init_rule : {"zero", "log_odds", "boostsrl"}
        How ``init`` was chosen (what :meth:`refit_leaves` recomputes).
    recursion : bool
        Whether the trees may test ``recursion_<target>``, the target's other atoms.
    evidence : tuple of tuple of str
        With ``recursion``: the target atoms known to be true when predicting (the training
        positives); the atoms being predicted are filled in by iterative classification.
    inference : {"iterative", "gibbs"}
        With ``recursion``: how the atoms being predicted are filled in
        (:meth:`predict_logits`).
    gibbs_samples, gibbs_burn_in, seed : int
        With ``inference="gibbs"``: sweeps averaged, sweeps discarded first, and the seed.
    """

    target: str
    arity: int
    trees: list[RelationalRegressionTree]
    init: float = 0.0
    step: float = 1.0
    init_rule: str = "zero"
    info: dict[str, Any] = field(default_factory=dict)
    recursion: bool = False
    evidence: tuple[tuple[str, ...], ...] = ()
    inference: str = "iterative"
    gibbs_samples: int = 20
    gibbs_burn_in: int = 5
    seed: int = 0

    def predicates(self) -> set[str]:
        """Body predicates used by any tree."""
        return set().union(*(t.predicates() for t in self.trees)) if self.trees else set()

    @property
    def recursive(self) -> bool:
        """Whether a tree tests ``recursion_<target>``."""
        return recursion_predicate(self.target) in self.predicates()

    def predict_logits(self, data: RelationalData, n_iter: int = RECURSION_ROUNDS) -> np.ndarray:
        """``psi`` of every example of ``data`` (its world's facts ground the trees).

        A recursive model reads ``evidence`` as the known atoms of the target; the atoms
        being predicted start unknown (false) and, ``n_iter`` times, those the model predicts
        true (``psi > 0``) join the known atoms (iterative classification, Neville & Jensen,
        JMLR 8, 2007, with hard labels), stopping early when those atoms stop changing. An
        example never reads an atom of its own subject.

        With ``inference="gibbs"`` the atoms are sampled instead (Gibbs sampling, as an RDN's
        joint inference is defined, Neville & Jensen 2007; synchronously: every atom is
        drawn from its conditional given the previous sweep), starting from the model with
        no atom guessed; the returned ``psi`` is the logit of the mean conditional
        probability over ``gibbs_samples`` sweeps after ``gibbs_burn_in``. Where no atom of
        a test world is known, iterative classification can stay where it starts (every
        atom false, so a tree whose first test reads one sends every example the same way);
        sampling does not.
        """
        if not self.recursion:
            self._check_data(data)
            return self._logits(Grounder(data), len(data), self.trees)
        rec = recursion_predicate(self.target)
        reads = [t for t in self.trees if rec in t.predicates()]
        others = [t for t in self.trees if rec not in t.predicates()]
        # trees that read no target atom do not change from round to round
        fixed = self._logits(Grounder(self._with_known(data, self.evidence)), len(data), others)
        if self.inference == "gibbs" and reads:
            return self._gibbs(data, fixed, reads)
        psi, guessed = fixed, ()
        for k in range(1 + (n_iter if reads else 0)):
            known = self._with_known(data, self.evidence + guessed)
            psi = fixed + self._logits(Grounder(known), len(data), reads, init=0.0)
            now = tuple(e for e, z in zip(data.examples, psi, strict=True) if z > 0)
            if k and now == guessed:  # a fixed point: another round would repeat this one
                break
            guessed = now
        return psi

    def _gibbs(
        self, data: RelationalData, fixed: np.ndarray, reads: Sequence[RelationalRegressionTree]
    ) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        n = len(data)

        def conditional(atoms: tuple[tuple[str, ...], ...]) -> np.ndarray:
            known = self._with_known(data, self.evidence + atoms)
            return fixed + self._logits(Grounder(known), n, reads, init=0.0)

        psi, total = conditional(()), np.zeros(n)
        for sweep in range(self.gibbs_burn_in + self.gibbs_samples):
            drawn = rng.random(n) < expit(psi)
            psi = conditional(tuple(e for e, d in zip(data.examples, drawn, strict=True) if d))
            if sweep >= self.gibbs_burn_in:
                total += expit(psi)
        p = np.clip(total / self.gibbs_samples, 1e-9, 1 - 1e-9)
        return np.log(p) - np.log1p(-p)

    def _with_known(self, data: RelationalData, atoms: Sequence[tuple[str, ...]]):
        data = with_recursion(data, atoms)
        self._check_data(data)
        return data

    def _logits(
        self,
        grounder: Grounder,
        n: int,
        trees: Sequence[RelationalRegressionTree],
        init: float | None = None,
    ) -> np.ndarray:
        psi = np.full(n, self.init if init is None else init)
        for tree in trees:
            values = np.array([leaf.value for leaf in tree.leaves()])
            psi += values[tree.leaf_index(grounder, n)]
        return psi

    def rename(self, mapping: Mapping[str, str]) -> RDNBoostModel:
        """A copy whose trees use the predicates ``mapping`` names (TreeBoostler's mapping).

        Parameters
        ----------
        mapping : mapping of str to str
            Source predicate to target predicate, the target predicate included; predicates
            not in it keep their names. Argument order is kept. Two predicates of the model
            may not map to one name, and dropping a predicate (mapping it to ``None``) is not
            a renaming: a :class:`~tlbench.errors.ConfigError` says so. Constants (head tests
            ``B = c``, ``#`` arguments) are kept as they are: they name things of the source
            world.

        Returns
        -------
        model : RDNBoostModel
            The same structure and leaf values over the renamed predicates.
        """
        used = self.predicates() | {self.target}
        bad = sorted(p for p in used if p in mapping and not isinstance(mapping[p], str))
        if bad:
            raise ConfigError(f"rename maps {', '.join(bad)} to no predicate; give a name")
        renamed = [mapping.get(p, p) for p in sorted(used)]
        if len(set(renamed)) != len(renamed):
            raise ConfigError(f"rename maps two predicates of the model to one: {dict(mapping)}")
        return replace(
            self,
            target=mapping.get(self.target, self.target),
            trees=[t.rename(mapping) for t in self.trees],
            info=dict(self.info),
            evidence=(),  # atoms of the source world
        )

    def refit_leaves(
        self, data: RelationalData, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> RDNBoostModel:
        """A copy with the same tests and leaf values re-learned on ``data`` (parameter learning).

        The trees are re-fitted in order, as boosting fitted them: the leaves of tree ``m``
        get ``step`` times the (weighted) mean gradient ``y - sigmoid(psi_{m-1})`` of the
        examples that reach them, ``psi_{m-1}`` being the re-fitted model so far (``init`` is
        recomputed by ``init_rule``). A leaf no example reaches keeps its value.

        Parameters
        ----------
        data : RelationalData
            A world with examples of ``target`` (rename first to move to another domain).
        y : ndarray of int
            Their 0/1 labels.
        sample_weight : ndarray, optional
            Example weights (default 1).

        Returns
        -------
        model : RDNBoostModel
        """
        y = np.asarray(y, dtype=float)
        if y.shape != (len(data),):
            raise DataError(f"{len(y)} labels for {len(data)} examples of {self.target!r}")
        evidence = positives(data, y) if self.recursion else ()
        if self.recursion:  # each example reads the other examples' labels, never its own
            data = with_recursion(data, evidence)
        self._check_data(data)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        grounder = Grounder(data)
        init = initial_potential(y, w, self.init_rule)
        psi = np.full(len(y), init)
        trees = []
        for tree in self.trees:
            tree = RelationalRegressionTree(tree.root.copy(), tree.target, tree.arity)
            leaf = tree.leaf_index(grounder, len(y))
            g = gradients(y, psi)
            for k, node in enumerate(tree.leaves()):
                at = leaf == k
                node.n_examples = int(at.sum())
                if w[at].sum() > 0:
                    node.value = self.step * float(np.sum(w[at] * g[at]) / np.sum(w[at]))
                psi[at] += node.value
            trees.append(tree)
        return replace(self, trees=trees, init=init, info=dict(self.info), evidence=evidence)

    def describe(self) -> list[str]:
        """Every tree as text."""
        lines = [f"psi_0 = {self.init:+.4f}"]
        for m, tree in enumerate(self.trees):
            lines.append(f"tree {m}:")
            lines += tree.describe()
        return lines

    def _check_data(self, data: RelationalData) -> None:
        if data.target != self.target:
            raise DataError(
                f"the model scores {self.target!r}, the examples are of {data.target!r}"
            )
        missing = sorted(self.predicates() - set(data.predicates))
        if missing:
            raise DataError(
                f"the model uses predicate(s) {', '.join(missing)} that relational domain "
                f"{data.name!r} lacks (rename the model to this domain's predicates first)"
            )


# --------------------------------------------------------------------------- the loss


def gradients(y: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """The functional gradient of the log-likelihood at each example: ``I(y=1) - sigmoid(psi)``.

    Natarajan et al. (2012), eq. 5: the pointwise gradient of ``log P(y | psi)`` with respect
    to ``psi(x)`` for the sigmoid conditional of the RDN.
    """
    return np.asarray(y, dtype=float) - expit(psi)


def log_loss(y: np.ndarray, psi: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Weighted mean negative log-likelihood of labels ``y`` under ``sigmoid(psi)``."""
    s = 2.0 * np.asarray(y, dtype=float) - 1.0
    w = np.ones(len(s)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    return float(-np.sum(w * log_expit(s * psi)) / np.sum(w))


def initial_potential(y: np.ndarray, w: np.ndarray, rule: str) -> float:
    """``psi_0`` by ``rule``: 0, the weighted log-odds of the labels, or BoostSRL's -1.8."""
    if rule == "zero":
        return 0.0
    if rule == "boostsrl":
        return BOOSTSRL_INIT
    p = float(np.clip(np.sum(w * y) / np.sum(w), 1e-6, 1 - 1e-6))
    return float(np.log(p / (1 - p)))


# --------------------------------------------------------------------------- modes

_MODE_LINE = re.compile(r"mode:\s*([A-Za-z][A-Za-z0-9_]*)\s*\(([^)]*)\)")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def parse_modes(lines: str | Sequence[str]) -> dict[str, list[tuple[str, ...]]]:
    """The signs of BoostSRL mode declarations, by predicate.

    Parameters
    ----------
    lines : str or sequence of str
        Background-file text with ``mode:`` lines, or mode strings with or without the
        ``mode:`` prefix (``"movie(+movie,-person)"``). ``//`` and ``/* */`` comments are
        skipped.

    Returns
    -------
    modes : dict of str to list of tuple of str
        For each predicate, its modes as sign tuples (``("+", "-")``); types in the modes are
        ignored (the data's types are used) and a ``!k`` suffix is dropped.
    """
    if not isinstance(lines, str):
        lines = "\n".join(s if s.lstrip().startswith("mode:") else f"mode: {s}" for s in lines)
    out: dict[str, list[tuple[str, ...]]] = {}
    for m in _MODE_LINE.finditer(_strip_comments(lines)):
        signs = []
        for arg in m.group(2).split(","):
            arg = arg.strip()
            if not arg or arg[0] not in "+-#":
                raise ConfigError(
                    f"mode {m.group(0)!r}: argument {arg!r} must start with +, - or #"
                )
            signs.append(arg[0])
        group = out.setdefault(m.group(1), [])
        if tuple(signs) not in group:
            group.append(tuple(signs))
    return out


def read_modes(path: str | Path) -> dict[str, list[tuple[str, ...]]]:
    """The modes of a BoostSRL zip (every ``*_bk.txt`` inside) or of one background file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"method.modes: no file {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            texts = [
                zf.read(n).decode("utf-8")
                for n in sorted(zf.namelist())
                if n.endswith("_bk.txt") and not n.startswith("__MACOSX/")
            ]
        return parse_modes("\n".join(texts))
    return parse_modes(path.read_text())


def infer_modes(data: RelationalData, value_types: set[str]) -> dict[str, list[tuple[str, ...]]]:
    """Modes inferred from the argument types.

    Each argument is ``+`` or ``-`` (at least one ``+``), or ``#`` too when its type is a value
    type; the target's mode has ``#`` on its value-type arguments (head tests ``B = c``).
    """
    out = {}
    for pred, types in sorted(data.predicates.items()):
        options = [("+", "-", "#") if t in value_types else ("+", "-") for t in types]
        if pred == data.target:
            out[pred] = [tuple("#" if t in value_types else "+" for t in types)]
            continue
        out[pred] = [m for m in product(*options) if "+" in m]
    return out


# --------------------------------------------------------------------------- grounding


def recursion_predicate(target: str) -> str:
    """The name under which the target's other atoms are facts (BoostSRL's ``recursion_t``)."""
    return RECURSION_PREFIX + target


def with_recursion(data: RelationalData, atoms: Sequence[tuple[str, ...]]) -> RelationalData:
    """``data`` with ``atoms`` (known true atoms of the target) as facts of ``recursion_<t>``.

    The predicate has the target's argument types. A tree test on it asks whether some atom
    of the target *about another subject* is known to be true: :class:`Grounder` never lets
    an example ``t(a, b)`` ground it with an atom ``t(a, ...)``, its own included. When
    predicting, every candidate atom of a subject (``t(a, b)`` and its negatives ``t(a, b')``)
    is queried together, so none of them is known; a learner that read them while learning
    would learn "another value of ``a`` is known, so not this one", which never holds when
    predicting (on a toy world of labeled groups it ranks the test atoms at exactly 0.5).

    A domain that declares the name itself with other argument types is refused; one that
    declares it with the target's types gets its facts replaced.
    """
    rec, types = recursion_predicate(data.target), tuple(data.predicates[data.target])
    if rec in data.predicates and tuple(data.predicates[rec]) != types:
        raise DataError(
            f"relational domain {data.name!r} declares {rec!r}, the name recursion gives the "
            f"other atoms of {data.target!r}"
        )
    atoms = tuple(dict.fromkeys(tuple(a) for a in atoms))
    bad = next((a for a in atoms if len(a) != len(types)), None)
    if bad is not None:
        raise DataError(f"known atom {data.target}{bad} has {len(bad)} arguments, not {len(types)}")
    return replace(
        data, predicates={**data.predicates, rec: types}, facts={**data.facts, rec: atoms}
    )


def count_recursive_nodes(model: RDNBoostModel) -> int:
    """Test nodes of ``model`` that read ``recursion_<target>``."""
    rec = recursion_predicate(model.target)
    return sum(
        any(lit.predicate == rec for lit in node.test) for t in model.trees for node in t.nodes()
    )


class Grounder:
    """A world's facts as integer arrays, for joining clause bodies with numpy.

    A clause's groundings for a set of examples are *rows*: an integer array whose column 0 is
    the example's index and column ``1 + k`` the constant bound to variable ``k``. Constants
    get one global integer code (types are not needed: clauses are type-consistent by
    construction). Extending a clause by a literal joins its rows with the literal's facts on
    the variables they share; testing a literal whose new variables are used nowhere else is a
    semi-join (a row survives when some fact matches), which never multiplies rows.

    Parameters
    ----------
    data : RelationalData
        Its facts and the constants of its examples.
    """

    def __init__(self, data: RelationalData) -> None:
        self.data = data
        codes: dict[str, int] = {}
        for atoms in data.facts.values():
            for atom in atoms:
                for c in atom:
                    codes.setdefault(c, len(codes))
        for ex in data.examples:
            for c in ex:
                codes.setdefault(c, len(codes))
        self.codes = codes
        self.base = max(len(codes), 1)
        self.facts = {
            p: np.array([[codes[c] for c in a] for a in atoms], dtype=np.int64).reshape(
                -1, len(data.predicates[p])
            )
            for p, atoms in data.facts.items()
        }
        self._views: dict[tuple, tuple] = {}
        self._head_rows: np.ndarray | None = None
        # the target's known atoms (``recursion_<target>``) that an example may read: never
        # one of its own subject (see :func:`with_recursion`)
        rec = recursion_predicate(data.target)
        self.recursive = rec if rec in data.predicates else None

    def head_rows(self) -> np.ndarray:
        """One row per example: ``(index, codes of its arguments)`` (computed once, read-only)."""
        if self._head_rows is None:
            n, arity = len(self.data.examples), len(self.data.predicates[self.data.target])
            ex = np.array(
                [[self.codes[c] for c in e] for e in self.data.examples], dtype=np.int64
            ).reshape(n, arity)
            self._head_rows = np.column_stack([np.arange(n, dtype=np.int64), ex])
            self._head_rows.flags.writeable = False
        return self._head_rows

    def _encode(self, cols: list[np.ndarray]) -> np.ndarray:
        if len(cols) == 1:
            return cols[0]
        if float(self.base) ** len(cols) >= 2.0**62:
            raise DataError(f"too many constants ({self.base}) to join on {len(cols)} arguments")
        key = np.zeros(len(cols[0]), dtype=np.int64)
        for col in cols:
            key = key * self.base + col
        return key

    def _view(self, lit: Literal, n_vars: int):
        """Facts of ``lit``'s predicate matching its constants, keyed on its bound variables.

        Returns sorted keys, the order that sorts them, the filtered facts and the positions
        of the literal's new variables (in variable order).
        """
        pattern = tuple(
            ("c", a) if isinstance(a, str) else ("b", a) if a < n_vars else ("n", a)
            for a in lit.args
        )
        key = (lit.predicate, tuple(("b",) if p[0] == "b" else p for p in pattern))
        if key not in self._views:
            facts = self.facts.get(lit.predicate)
            if facts is None:
                if lit.predicate not in self.data.predicates:
                    raise DataError(f"unknown predicate {lit.predicate!r} in a tree test")
                facts = np.zeros((0, len(self.data.predicates[lit.predicate])), dtype=np.int64)
            keep = np.ones(len(facts), dtype=bool)
            for pos, (kind, a) in enumerate(pattern):
                if kind == "c":
                    keep &= facts[:, pos] == self.codes.get(a, -1)
            facts = facts[keep]
            bound = [pos for pos, p in enumerate(pattern) if p[0] == "b"]
            if not bound:
                raise DataError(f"literal {lit.describe()} shares no variable with its clause")
            keys = self._encode([facts[:, pos] for pos in bound])
            order = np.argsort(keys, kind="stable")
            new = sorted((a, pos) for pos, (kind, a) in enumerate(pattern) if kind == "n")
            # a key on one argument is a constant code: dense tables answer a probe in O(1)
            # where a binary search over a million unsorted probes misses the cache each time
            dense = bitmap = None
            if len(bound) == 1:
                counts = np.bincount(keys, minlength=self.base)
                dense = (counts, np.cumsum(counts) - counts)
            elif float(self.base) ** len(bound) <= 2.0**28:  # a 32 MB bitmap at most
                bits = np.zeros(self.base ** len(bound), dtype=bool)
                bits[keys] = True
                bitmap = np.packbits(bits, bitorder="little")
            self._views[key] = (keys[order], order, facts, [pos for _, pos in new], dense, bitmap)
        return self._views[key]

    def _bound_keys(self, rows: np.ndarray, lit: Literal, n_vars: int) -> np.ndarray:
        cols = [rows[:, 1 + a] for a in lit.args if isinstance(a, int) and a < n_vars]
        if not cols:
            raise DataError(f"literal {lit.describe()} shares no variable with its clause")
        return self._encode(cols)

    def test(self, rows: np.ndarray, lit: Literal) -> np.ndarray:
        """Which rows have a grounding of ``lit`` (its new variables existential)."""
        n_vars = rows.shape[1] - 1
        if lit.predicate == EQUALS:
            var, const = lit.args
            return rows[:, 1 + var] == self.codes.get(const, -1)
        if lit.predicate == self.recursive:
            return self._recursive_test(rows, lit, n_vars)
        keys, _, _, _, dense, bitmap = self._view(lit, n_vars)
        probe = self._bound_keys(rows, lit, n_vars)
        if dense is not None:
            return dense[0][probe] > 0
        if bitmap is not None:
            return ((bitmap[probe >> 3] >> (probe & 7).astype(np.uint8)) & 1).astype(bool)
        pos = np.minimum(np.searchsorted(keys, probe), max(len(keys) - 1, 0))
        return keys[pos] == probe if len(keys) else np.zeros(len(rows), dtype=bool)

    def join(self, rows: np.ndarray, lit: Literal, cap: int | None = None) -> np.ndarray | None:
        """Rows extended by ``lit``'s groundings (``None`` when more than ``cap`` rows)."""
        n_vars = rows.shape[1] - 1
        if lit.predicate == EQUALS:
            return rows[self.test(rows, lit)]
        keys, order, facts, new, dense, _ = self._view(lit, n_vars)
        if not new:
            return rows[self.test(rows, lit)]
        probe = self._bound_keys(rows, lit, n_vars)
        if dense is not None:
            counts, lo = dense[0][probe], dense[1][probe]
        else:
            lo = np.searchsorted(keys, probe, side="left")
            counts = np.searchsorted(keys, probe, side="right") - lo
        total = int(counts.sum())
        if cap is not None and total > cap:
            return None
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        matched = order[starts + np.arange(total)]
        out = np.hstack([np.repeat(rows, counts, axis=0), facts[matched][:, new]])
        if lit.predicate == self.recursive:
            out = out[~self._is_own_atom(out, lit)]
        return out

    def _is_own_atom(self, rows: np.ndarray, lit: Literal) -> np.ndarray:
        """Whether ``lit`` (every variable bound) grounds to an atom of the example's subject."""
        a = lit.args[0]
        return rows[:, 1] == (self.codes.get(a, -1) if isinstance(a, str) else rows[:, 1 + a])

    def _recursive_test(self, rows: np.ndarray, lit: Literal, n_vars: int) -> np.ndarray:
        """Rows with a grounding of a ``recursion_<target>`` literal not of their own subject.

        With a new variable as the literal's first argument, the known atoms matching the
        bound arguments are counted, and those whose subject is the example's are subtracted
        (counted as the same literal with the head's first variable in that place).
        """
        a = lit.args[0]
        if isinstance(a, str) or a < n_vars:
            hit = self._match_counts(rows, lit, n_vars) > 0
            return hit & ~self._is_own_atom(rows, lit)
        own = Literal(lit.predicate, (0, *lit.args[1:]))
        return self._match_counts(rows, lit, n_vars) > self._match_counts(rows, own, n_vars)

    def extend(
        self,
        rows: np.ndarray,
        literals: Sequence[Literal],
        cap: int | None = None,
        needed: set[int] | None = None,
        budget: int | None = None,
    ) -> np.ndarray:
        """Rows extended by every literal of a conjunction; past ``cap``: GroundingLimit.

        ``needed``: the variables read after the conjunction (``None``: all of them). A
        literal none of whose new variables is needed, nor used by a later literal, is a
        semi-join: its rows are kept, not multiplied, and its new variables' columns are -1.
        With ``needed``, the variables nothing later reads (but the head's) are projected out
        and the rows deduplicated at the end, and a join that would produce more than
        ``JOIN_BUDGET`` rows is done in slices, each projected at once: a chain such as
        ``recursion_t(C, B), r(D, C)`` then holds the distinct ``(A, B, D)`` of one slice at a
        time, not every ``(C, D)`` path to them. ``budget``: the most distinct projected rows
        a sliced join may hold (past it: ``_RowBudget``, and the caller walks fewer examples).
        """
        n_head = len(self.data.predicates[self.data.target])
        for i, lit in enumerate(literals):
            n_vars = rows.shape[1] - 1
            if needed is None or lit.predicate == EQUALS:
                joined = self.join(rows, lit, cap)
                if joined is None:
                    raise GroundingLimit(f"{lit.describe()} grounds more than {cap} rows")
                rows = joined
                continue
            new = self._view(lit, n_vars)[3]
            later = needed.union(*(other.variables() for other in literals[i + 1 :]))
            if new and not any(lit.args[pos] in later for pos in new):
                rows = rows[self.test(rows, lit)]
                rows = np.hstack([rows, np.full((len(rows), len(new)), -1, np.int64)])
                continue
            rows = self._join_projected(rows, lit, cap, later, n_head, budget)
        return rows if needed is None else _project(rows, needed, n_head)

    def _join_projected(
        self,
        rows: np.ndarray,
        lit: Literal,
        cap: int | None,
        keep: set[int],
        n_head: int,
        budget: int | None = None,
    ) -> np.ndarray:
        """:meth:`join`, in slices when it would exceed ``JOIN_BUDGET`` rows.

        Each slice has the variables outside ``keep`` (and the head's) projected out.
        """
        n_vars = rows.shape[1] - 1
        # a literal with no new variable is a filter: never more rows than it is given
        counts = self._match_counts(rows, lit, n_vars) if self._view(lit, n_vars)[3] else None
        total = len(rows) if counts is None else int(counts.sum())  # recursion: at most
        if counts is not None and cap is not None and total > cap:
            raise GroundingLimit(f"{lit.describe()} grounds more than {cap} rows")
        if counts is None or total <= JOIN_BUDGET:
            return self.join(rows, lit)  # projected once, at the end of the conjunction
        ends = np.searchsorted(np.cumsum(counts), np.arange(1, total // JOIN_BUDGET + 1)
                               * JOIN_BUDGET, side="right")  # fmt: skip
        bounds = np.unique(np.concatenate([[0], np.maximum(ends, 1), [len(rows)]]))
        out, held = [], 0
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            out.append(_project(self.join(rows[lo:hi], lit), keep, n_head))
            held += len(out[-1])
            if budget is not None and held > budget:
                raise _RowBudget(f"{lit.describe()} holds more than {budget} rows")
        return _project(np.concatenate(out), keep, n_head, dedupe=True)

    def _match_counts(self, rows: np.ndarray, lit: Literal, n_vars: int) -> np.ndarray:
        """How many facts of ``lit`` each row joins with."""
        keys, _, _, _, dense, _ = self._view(lit, n_vars)
        probe = self._bound_keys(rows, lit, n_vars)
        if dense is not None:
            return dense[0][probe]
        return np.searchsorted(keys, probe, side="right") - np.searchsorted(keys, probe)


def _project(rows: np.ndarray, keep: set[int], n_head: int, dedupe: bool = False) -> np.ndarray:
    """Rows with the variables outside ``keep`` (the head's excepted) set to -1, deduplicated.

    Rows that differ only in variables nothing reads again are one row. Only when some such
    column still holds values (or ``dedupe``) are the rows deduplicated.
    """
    # body columns not projected out already
    live = [c for c in range(1 + n_head, rows.shape[1]) if (rows[:, c] != -1).any()]
    drop = [c for c in live if c - 1 not in keep]
    if (not drop and not dedupe) or len(rows) < 2:
        return rows
    first = _first_rows(rows, [0, *(c for c in live if c not in drop)])
    if first is None:
        rows = rows.copy()  # the caller's rows (a parent's, the false branch's) stay intact
        rows[:, drop] = -1
        return np.unique(rows, axis=0)
    out = rows[first]  # a copy: the caller's rows stay intact
    out[:, drop] = -1
    return out


def _first_rows(rows: np.ndarray, cols: list[int]) -> np.ndarray | None:
    """The first row of each distinct ``rows[:, cols]``, in the order ``np.unique`` sorts them.

    Every grounding row starts ``(example index, head arguments)`` and the head's arguments
    are a function of the index, so ``cols`` (the index and the other columns that hold
    values) identify a row. They are packed into one integer per row (mixed radix, the
    first column most significant, -1 as 0), which sorts as the rows do: ``np.unique`` over
    rows sorts them as opaque records, several times slower. ``None`` when the key would
    not fit in 62 bits.
    """
    key = np.zeros(len(rows), dtype=np.int64)
    span = 1
    for c in cols:
        col = rows[:, c] + 1
        radix = int(col.max()) + 1
        span *= radix
        if span >= 2**62:
            return None
        key = key * radix + col
    return np.unique(key, return_index=True)[1]


# --------------------------------------------------------------------------- tree learning


class _LRU:
    """A least-recently-used cache bounded by the bytes of its numpy values."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self.items: OrderedDict[Any, np.ndarray] = OrderedDict()

    def get(self, key: Any) -> np.ndarray | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: Any, value: np.ndarray) -> None:
        self.items[key] = value
        self.used += value.nbytes
        while self.used > self.budget and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.used -= old.nbytes


class GroundingLimit(Exception):
    """A test grounds more rows than the caller's cap (see :meth:`Grounder.extend`)."""


class _RowBudget(Exception):
    """A sliced join holds more distinct rows than the tree walk's budget (it walks fewer)."""


@dataclass
class _Open:
    """A leaf of the growing tree, with what splitting it needs."""

    node: TreeNode
    idx: np.ndarray  # training examples at the leaf
    clause: tuple[Literal, ...]  # the path's true tests
    var_types: tuple[str, ...]
    depth: int
    best: tuple[float, tuple[Literal, ...], np.ndarray] | None = None


class _TreeLearner:
    """Grows relational regression trees on one training world (caches across trees)."""

    def __init__(
        self,
        grounder: Grounder,
        modes: Mapping[str, list[tuple[str, ...]]],
        constants: Mapping[str, list[str]],
        *,
        node_size: int,
        max_depth: int,
        max_leaves: int,
        min_leaf: float,
        max_bindings: int,
        cache_bytes: int = 256 << 20,
    ) -> None:
        data = grounder.data
        self.g = grounder
        self.types = dict(data.predicates)
        self.target = data.target
        self.recursive = grounder.recursive
        self.arity = len(self.types[self.target])
        self.n = len(data.examples)
        self.modes = {p: m for p, m in modes.items() if p in self.types}
        self.constants = constants
        self.node_size, self.max_depth = node_size, max_depth
        self.max_leaves, self.min_leaf, self.max_bindings = max_leaves, min_leaf, max_bindings
        self._rows = _LRU(cache_bytes // 2)
        self._cover = _LRU(cache_bytes // 2)
        self._literals: dict[tuple, list[tuple[Literal, tuple[str, ...]]]] = {}
        self.n_scored = self.n_skipped = 0

    # ---- candidate literals

    def literals(self, var_types: tuple[str, ...], need: frozenset[int] = frozenset()):
        """Literals the modes allow over variables of ``var_types``, with the new types.

        With ``need``, only literals that use one of those variables (the lookahead).
        """
        key = (var_types, need)
        if key in self._literals:
            return self._literals[key]
        n = len(var_types)
        out: dict[Literal, tuple[str, ...]] = {}
        for pred in sorted(self.modes):
            if pred == self.target:
                continue
            types = self.types[pred]
            for mode in self.modes[pred]:
                if len(mode) != len(types):
                    raise ConfigError(
                        f"mode of {pred!r} has {len(mode)} arguments, the predicate {len(types)}"
                    )
                choices = []
                for sign, typ in zip(mode, types, strict=True):
                    if sign == "+":
                        choices.append([v for v in range(n) if var_types[v] == typ])
                    elif sign == "-":
                        choices.append([None])
                    else:
                        choices.append(self.constants.get(typ, []))
                for combo in product(*choices):
                    if not any(isinstance(c, int) for c in combo):
                        continue
                    if need and not any(isinstance(c, int) and c in need for c in combo):
                        continue
                    if pred == self.recursive and combo[0] == 0:
                        continue  # an atom of the example's own subject: never readable
                    args, new, nxt = [], [], n
                    for c, typ in zip(combo, types, strict=True):
                        if c is None:
                            args.append(nxt)
                            new.append(typ)
                            nxt += 1
                        else:
                            args.append(c)
                    out.setdefault(Literal(pred, tuple(args)), tuple(new))
        if not need:  # head arguments against constants (``#`` in the target's mode)
            for mode in self.modes.get(self.target, []):
                for v, sign in enumerate(mode):
                    if sign == "#":
                        for c in self.constants.get(self.types[self.target][v], []):
                            out.setdefault(Literal(EQUALS, (v, c)), ())
        self._literals[key] = list(out.items())
        return self._literals[key]

    # ---- groundings and coverage over all training examples, cached by clause

    def rows(self, clause: tuple[Literal, ...]) -> np.ndarray | None:
        """Groundings of ``clause`` for every training example (``None``: too many)."""
        if not clause:
            return self._head
        got = self._rows.get(clause)
        if got is None:
            parent = self.rows(clause[:-1])
            got = None if parent is None else self.g.join(parent, clause[-1], self.max_bindings)
            if got is None:
                return None
            self._rows.put(clause, got)
        return got

    def coverage(self, clause, test, parent_rows) -> np.ndarray | None:
        """Whether each training example has a grounding of ``clause + test``."""
        key = clause + test
        packed = self._cover.get(key)
        if packed is not None:
            return np.unpackbits(packed, count=self.n).astype(bool)
        rows = parent_rows() if callable(parent_rows) else parent_rows
        if rows is None:
            return None
        hit = self.g.test(rows, test[-1])
        cov = np.zeros(self.n, dtype=bool)
        cov[rows[hit, 0]] = True
        self._cover.put(key, np.packbits(cov))
        return cov

    # ---- search

    def best_split(self, leaf: _Open, wg: np.ndarray, w: np.ndarray) -> None:
        """The test with the largest squared-error reduction at ``leaf`` (or none)."""
        idx = leaf.idx
        wg_n, w_n = wg[idx], w[idx]
        S, W = wg_n.sum(), w_n.sum()
        if self.min_leaf * 2 > W:
            return
        base = S * S / W
        rows = self.rows(leaf.clause)
        if rows is None:
            return
        best_gain, best = 1e-12 * max(1.0, abs(base)), None

        def score(cov: np.ndarray | None, test: tuple[Literal, ...]) -> None:
            nonlocal best_gain, best
            if cov is None:
                self.n_skipped += 1
                return
            self.n_scored += 1
            c = cov[idx]
            wt = w_n @ c
            wf = W - wt
            if wt < self.min_leaf or wf < self.min_leaf:
                return
            st = wg_n @ c
            gain = st * st / wt + (S - st) ** 2 / wf - base
            if gain > best_gain * (1 + 1e-9):  # ties: the shorter, earlier test
                best_gain, best = gain, (test, c)

        firsts = self.literals(leaf.var_types)
        for lit, _ in firsts:
            score(self.coverage(leaf.clause, (lit,), rows), (lit,))
        if self.node_size >= 2:
            for lit, new_types in firsts:
                if not new_types:
                    continue
                ext_types = leaf.var_types + new_types
                need = frozenset(range(len(leaf.var_types), len(ext_types)))
                cache: list[np.ndarray | None] = []

                def ext_rows(lit=lit, cache=cache):
                    if not cache:
                        cache.append(self.g.join(rows, lit, self.max_bindings))
                    return cache[0]

                for lit2, _ in self.literals(ext_types, need):
                    score(self.coverage(leaf.clause, (lit, lit2), ext_rows), (lit, lit2))
        if best is not None:
            leaf.best = (best_gain, best[0], idx[best[1]])

    def grow(self, wg: np.ndarray, w: np.ndarray) -> tuple[TreeNode, list[_Open]]:
        """One tree fitted to the weighted gradients; returns its root and final leaves."""
        head_types = tuple(self.types[self.target])
        root = _Open(TreeNode(n_examples=self.n), np.arange(self.n), (), head_types, 0)
        return root.node, self.expand([root], wg, w, self.max_leaves)

    def expand(
        self, leaves: list[_Open], wg: np.ndarray, w: np.ndarray, max_leaves: int
    ) -> list[_Open]:
        """Split ``leaves`` best first until there are ``max_leaves`` (the nodes change in place).

        A tree grows from its root this way; a revision grows a subtree from one leaf.
        Returns the final leaves (the splits' children in place of their parents).
        """
        for leaf in leaves:
            if leaf.depth < self.max_depth:
                self.best_split(leaf, wg, w)
        leaves = list(leaves)
        while len(leaves) < max_leaves:
            ready = [lf for lf in leaves if lf.best is not None]
            if not ready:
                break
            leaf = max(ready, key=lambda lf: lf.best[0])  # first of equals: stable order
            _, test, covered = leaf.best
            mask = np.zeros(self.n, dtype=bool)
            mask[covered] = True
            yes_idx, no_idx = leaf.idx[mask[leaf.idx]], leaf.idx[~mask[leaf.idx]]
            yes = _Open(
                TreeNode(n_examples=len(yes_idx)),
                yes_idx,
                leaf.clause + test,
                leaf.var_types + self._ordered_types(leaf, test),
                leaf.depth + 1,
            )
            no = _Open(
                TreeNode(n_examples=len(no_idx)), no_idx, leaf.clause, leaf.var_types,
                leaf.depth + 1,
            )  # fmt: skip
            leaf.node.test, leaf.node.true, leaf.node.false = test, yes.node, no.node
            at = leaves.index(leaf)
            leaves[at : at + 1] = [yes, no]
            for child in (yes, no):
                if child.depth < self.max_depth:
                    self.best_split(child, wg, w)
        return leaves

    def _ordered_types(self, leaf: _Open, test: tuple[Literal, ...]) -> tuple[str, ...]:
        found: dict[int, str] = {}
        for lit in test:
            if lit.predicate == EQUALS:
                continue
            for pos, a in enumerate(lit.args):
                if isinstance(a, int) and a >= len(leaf.var_types):
                    found.setdefault(a, self.types[lit.predicate][pos])
        return tuple(found[k] for k in sorted(found))

    def start(self) -> None:
        """Ground the head once (every tree starts from it)."""
        self._head = self.g.head_rows()


def value_types(
    data: RelationalData,
    max_constants: int,
    y: np.ndarray | None = None,
    max_value_arg_constants: int = 0,
) -> dict[str, list[str]]:
    """Types whose arguments may be constants (``#``), with their constants (sorted).

    A type qualifies with at most ``max_constants`` constants or, if it is a value argument
    of the target (:func:`~.learner.value_arg_types`), with at most
    ``max_value_arg_constants``: the clause learner's rule
    (:func:`~.learner.example_constants`), which lets a tree test ``B = c`` on Yeast's
    protein classes (about a hundred) as a BoostSRL ``#`` mode would.

    With the labels ``y``, a type's constants are those of the facts and the positive
    examples: a negative example is generated, not observed, and a generator that pairs
    arguments regardless of type (the recorded TreeBoostler runs' ``accounttype(a1, a2)``)
    would otherwise fill a small type such as Twitter's account types with every account.
    """
    if y is None:
        entities = data.entities
    else:
        entities = replace(data, examples=positives(data, y), fold=None).entities
    value_args = value_arg_types(data)
    return {
        t: list(c)
        for t, c in entities.items()
        if 0 < len(c) <= max(max_constants, max_value_arg_constants * (t in value_args))
    }


def learn_rdn_boost(
    data: RelationalData,
    y: np.ndarray,
    *,
    n_trees: int = 10,
    max_depth: int = 3,
    node_size: int = 2,
    max_leaves: int = 8,
    min_leaf_examples: float = 2.0,
    step: float = 1.0,
    init: str = "zero",
    max_constants: int = 10,
    max_value_arg_constants: int = 0,
    modes: Mapping[str, list[tuple[str, ...]]] | None = None,
    max_bindings: int = 1_000_000,
    sample_weight: np.ndarray | None = None,
    recursion: bool = False,
) -> RDNBoostModel:
    """Fit ``n_trees`` relational regression trees by functional gradient boosting.

    Parameters
    ----------
    data : RelationalData
        The training world and examples of ``data.target``.
    y : ndarray of int
        0/1 labels of ``data.examples``.
    n_trees, max_depth, node_size, max_leaves, min_leaf_examples, step, init, max_constants,
    max_value_arg_constants
        As :class:`RDNBoost`.
    modes : mapping, optional
        Sign tuples per predicate (:func:`parse_modes`); ``None``: :func:`infer_modes`.
    max_bindings : int
        Largest number of grounding rows a candidate test may produce while learning.
    sample_weight : ndarray, optional
        Example weights (default 1).
    recursion : bool
        Let tests read the other training positives (:func:`with_recursion`), as BoostSRL's
        ``recursion=true``; the model keeps them as the evidence it predicts with.

    Returns
    -------
    model : RDNBoostModel
        With ``info["train_loss"]`` (log-loss before the first tree and after each one).
    """
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    evidence = positives(data, y) if recursion else ()
    if recursion:
        data = with_recursion(data, evidence)
    constants = value_types(data, max_constants, y, max_value_arg_constants)
    if modes is None:
        used_modes = infer_modes(data, set(constants))
    else:  # a declared ``#`` argument may take any constant of its type, as in BoostSRL
        used_modes = modes
        entities = data.entities
        for pred, group in modes.items():
            for mode in group:
                for sign, typ in zip(mode, data.predicates.get(pred, ()), strict=False):
                    if sign == "#":
                        constants.setdefault(typ, list(entities.get(typ, ())))
    grounder = Grounder(data)
    learner = _TreeLearner(
        grounder,
        used_modes,
        constants,
        node_size=node_size,
        max_depth=max_depth,
        max_leaves=max_leaves,
        min_leaf=min_leaf_examples,
        max_bindings=max_bindings,
    )
    learner.start()
    psi0 = initial_potential(y, w, init)
    psi = np.full(len(y), psi0)
    losses = [log_loss(y, psi, w)]
    seconds = []
    arity = len(data.predicates[data.target])
    trees = []
    for m in range(n_trees):
        t0 = time.perf_counter()
        g = gradients(y, psi)
        root, leaves = learner.grow(w * g, w)
        for leaf in leaves:
            ws = w[leaf.idx].sum()
            leaf.node.value = step * float((w[leaf.idx] @ g[leaf.idx]) / ws) if ws else 0.0
            psi[leaf.idx] += leaf.node.value
        trees.append(RelationalRegressionTree(root, data.target, arity))
        losses.append(log_loss(y, psi, w))
        seconds.append(time.perf_counter() - t0)
        logger.info("tree %d: %d leaves, train log-loss %.4f", m, len(leaves), losses[-1])
    return RDNBoostModel(
        target=data.target,
        arity=arity,
        trees=trees,
        init=psi0,
        step=step,
        init_rule=init,
        recursion=recursion,
        evidence=evidence,
        info={
            "train_loss": losses,
            "tree_seconds": seconds,
            "scored_candidates": learner.n_scored,
            "skipped_candidates": learner.n_skipped,
            "value_types": sorted(constants),
        },
    )


# --------------------------------------------------------------------------- the method


def with_inference(model: RDNBoostModel, estimator: Any) -> RDNBoostModel:
    """``model`` predicting with an estimator's recursive inference settings.

    ``estimator`` has ``recursive_inference``, ``gibbs_samples``, ``gibbs_burn_in`` and
    ``random_state`` (:class:`RDNBoost`, TreeBoostler).
    """
    seed = estimator.random_state
    return replace(
        model,
        inference=estimator.recursive_inference,
        gibbs_samples=estimator.gibbs_samples,
        gibbs_burn_in=estimator.gibbs_burn_in,
        seed=0 if seed is None else int(seed),
    )


def subsample_negatives(y: np.ndarray, ratio: float | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of every positive and at most ``ratio`` negatives per positive (seeded, sorted)."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if ratio is None or len(neg) <= ratio * len(pos):
        return np.arange(len(y))
    keep = rng.choice(neg, size=max(1, int(round(ratio * len(pos)))), replace=False)
    return np.sort(np.concatenate([pos, keep]))


@register_method("rdn_boost")
class RDNBoost(RelationalClassifierMixin, TransferMethod):
    """No transfer: a boosted relational dependency network (RDN-Boost) on the target alone.

    Parameters
    ----------
    n_trees : int, default=10
        Boosted trees (BoostSRL's ``-trees``; srlearn's and TreeBoostler's 10).
    max_depth : int, default=3
        Most tests from the root to a leaf (BoostSRL's ``maxTreeDepth``, srlearn's 3).
    node_size : int, default=2
        Most literals in one test (BoostSRL's ``nodeSize``, default 2).
    max_leaves : int, default=8
        Most leaves (clauses) per tree (BoostSRL's ``numOfClauses``; 8 in TreeBoostler).
    min_leaf_examples : float, default=2.0
        Least (weighted) examples on each side of a split (BoostSRL's ``minPosCoverage``).
    step : float, default=1.0
        Step length: each leaf adds ``step`` times its mean gradient (BoostSRL's ``-step``).
    init : {"zero", "log_odds", "boostsrl"}, default="zero"
        ``psi_0``: 0 (the paper), the training log-odds, or BoostSRL's ``-1.8``.
    neg_pos_ratio : float or None, default=2.0
        Negatives kept per positive for learning (BoostSRL's ``-negPosRatio``); ``None``: all.
    max_constants : int, default=10
        A type with at most this many constants is a value type (``#`` arguments; head tests
        ``B = c``) when the modes are inferred.
    max_value_arg_constants : int, default=0
        If positive, a value argument of the target (a type no other predicate uses: Yeast's
        protein class) is a value type with at most this many constants, the clause learner's
        rule (200 there); 0 applies ``max_constants`` to it too, which every recorded row of
        ``experiments/relational/README.md`` used unless it says otherwise.
    modes : str, list of str or None, default=None
        BoostSRL mode lines, or the path of a BoostSRL zip or background file holding them;
        ``None``: inferred from the argument types. Only predicates with a mode are used.
    max_bindings : int, default=1000000
        Grounding rows a candidate test may produce while learning (larger ones are skipped).
    recursion : bool, default=False
        Let tests read the target's other atoms as ``recursion_<target>`` facts (BoostSRL's
        ``recursion=true``): the other training labels while learning; the training
        positives and, by iterative classification, the model's own predictions when
        predicting. No example reads an atom of its own subject (first argument), and no
        test label is read.
    recursive_inference : {"iterative", "gibbs"}, default="iterative"
        With ``recursion``: how the atoms being predicted are filled in (hard iterative
        classification, or Gibbs sampling; :meth:`RDNBoostModel.predict_logits`).
    gibbs_samples : int, default=20
        Sweeps averaged with ``recursive_inference="gibbs"``.
    gibbs_burn_in : int, default=5
        Sweeps discarded before them.
    random_state : int or None, default=0
        Seeds the negative subsample (and the Gibbs sampler).

    Attributes
    ----------
    model_ : RDNBoostModel
        The trees.
    target_predicate_ : str
        The predicate it predicts.
    diagnostics_ : dict
        Trees and nodes counted, training time, the training log-loss after each tree, and the
        trees as text.
    """

    family: ClassVar[str] = "relational"
    final_classifier: ClassVar[str] = "boosted relational regression trees"
    supports: ClassVar[frozenset[str]] = frozenset({"relational"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = (
        "Natarajan et al., Gradient-based boosting for statistical relational learning: "
        "the relational dependency network case, MLJ 2012 (no transfer)"
    )

    def __init__(
        self,
        *,
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
        modes: str | list[str] | None = None,
        max_bindings: int = 1_000_000,
        recursion: bool = False,
        recursive_inference: str = "iterative",
        gibbs_samples: int = 20,
        gibbs_burn_in: int = 5,
        random_state: int | None = 0,
    ) -> None:
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
        self.modes = modes
        self.max_bindings = max_bindings
        self.recursion = recursion
        self.recursive_inference = recursive_inference
        self.gibbs_samples = gibbs_samples
        self.gibbs_burn_in = gibbs_burn_in
        self.random_state = random_state

    def _check_params(self) -> None:
        checks = [
            (self.n_trees >= 1, f"method.n_trees must be >= 1, got {self.n_trees}"),
            (self.max_depth >= 0, f"method.max_depth must be >= 0, got {self.max_depth}"),
            (self.node_size in (1, 2), f"method.node_size must be 1 or 2, got {self.node_size}"),
            (self.max_leaves >= 1, f"method.max_leaves must be >= 1, got {self.max_leaves}"),
            (
                self.min_leaf_examples > 0,
                f"method.min_leaf_examples must be > 0, got {self.min_leaf_examples}",
            ),
            (self.step > 0, f"method.step must be > 0, got {self.step}"),
            (self.init in INITS, f"method.init must be one of {INITS}, got {self.init!r}"),
            (
                self.neg_pos_ratio is None or self.neg_pos_ratio > 0,
                f"method.neg_pos_ratio must be > 0 or null, got {self.neg_pos_ratio}",
            ),
            (self.max_constants >= 0, "method.max_constants must be >= 0"),
            (self.max_value_arg_constants >= 0, "method.max_value_arg_constants must be >= 0"),
            (self.max_bindings >= 1, "method.max_bindings must be >= 1"),
            (
                self.recursive_inference in INFERENCES,
                f"method.recursive_inference must be one of {INFERENCES}, "
                f"got {self.recursive_inference!r}",
            ),
            (self.gibbs_samples >= 1, "method.gibbs_samples must be >= 1"),
            (self.gibbs_burn_in >= 0, "method.gibbs_burn_in must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def _modes(self, data: RelationalData) -> dict[str, list[tuple[str, ...]]] | None:
        if self.modes is None:
            return None
        if isinstance(self.modes, str | Path) and "mode:" not in str(self.modes):
            modes = read_modes(self.modes)
        else:
            modes = parse_modes(self.modes if isinstance(self.modes, str) else list(self.modes))
        if not set(modes) & (set(data.predicates) - {data.target}):
            raise ConfigError(
                f"method.modes declare none of the predicates of {data.name!r} "
                f"({', '.join(sorted(data.predicates))})"
            )
        return modes

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Boost trees on the labeled target training examples."""
        self.check_task(task)
        self._check_params()
        target = task.target.labeled()
        check_examples(target.X, target.y, "target")
        modes = self._modes(target.X)
        rng = np.random.default_rng(self.random_state)
        keep = subsample_negatives(np.asarray(target.y), self.neg_pos_ratio, rng)
        data, y = target.X.subset(keep), np.asarray(target.y)[keep]
        start = time.perf_counter()
        self.model_ = learn_rdn_boost(
            data,
            y,
            n_trees=self.n_trees,
            max_depth=self.max_depth,
            node_size=self.node_size,
            max_leaves=self.max_leaves,
            min_leaf_examples=self.min_leaf_examples,
            step=self.step,
            init=self.init,
            max_constants=self.max_constants,
            max_value_arg_constants=self.max_value_arg_constants,
            modes=modes,
            max_bindings=self.max_bindings,
            recursion=bool(self.recursion),
        )
        self.model_ = with_inference(self.model_, self)
        seconds = time.perf_counter() - start
        self.target_predicate_ = data.target
        self.classes_ = np.array([0, 1])
        trees = self.model_.trees
        info = self.model_.info
        self.diagnostics_ = {
            "n_trees": len(trees),
            "n_nodes": sum(t.n_tests for t in trees),
            "n_leaves": sum(len(t.leaves()) for t in trees),
            "train_seconds": round(seconds, 3),
            "train_loss": [round(v, 5) for v in info["train_loss"]],
            "tree_seconds": [round(v, 3) for v in info["tree_seconds"]],
            "n_train_examples": len(y),
            "n_train_positives": int(y.sum()),
            "modes": "declared (method.modes)" if modes is not None else "inferred from types",
            "value_types": info["value_types"],
            "recursion": bool(self.recursion),
            "n_recursive_nodes": count_recursive_nodes(self.model_),
            "scored_candidates": info["scored_candidates"],
            "skipped_candidates": info["skipped_candidates"],
            "trees": self.model_.describe(),
        }
        return self
