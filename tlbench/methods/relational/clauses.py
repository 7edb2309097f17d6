"""First-order clauses as relational paths, and their groundings counted with sparse products.

A clause is a conjunction attached to the target atom ``t(X, Y)`` (or ``t(X)``), in one of two
shapes, the relational-path features of Lao & Cohen, "Relational retrieval using a combination
of path-constrained random walks", Machine Learning 81, 2010, as Horn-clause bodies:

- a **chain** from ``X`` to ``Y``: ``t(X, Y) <- r1(X, Z1), r2(Z1, Z2), ..., rk(Zk-1, Y)``;
- a **node** clause from one argument: ``t(X, ...) <- r1(X, Z1), ..., rk(Zk-1, Zk), u(Zk)``,
  where the unary test ``u`` may be absent (then the path merely has to exist).

Each step traverses one predicate between two of its argument positions, in either direction,
so ``movie(M, X), movie(M, Y)`` (X and Y share a movie) is the chain
``(movie, 1, 0), (movie, 0, 1)``. A clause's feature for an example is 1 when the body has at
least one grounding (existential semantics, as in BoostSRL's tree tests and Horn-clause MLNs
under pseudo-likelihood), computed for all examples at once: a node clause is a product of
sparse adjacency matrices with a vector, a chain meets in the middle (left half from ``X``,
right half from ``Y``, row-wise dot product).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ...errors import DataError
from ...task import RelationalData

Step = tuple[str, int, int]  # predicate, from argument position, to argument position
CHAIN = -1  # Clause.anchor of a chain from the target's first argument to its second
RECURSIVE = -2  # Clause.anchor of t(X, ..) <- path(X, Z), t(Z, ..) with Z another constant


@dataclass(frozen=True)
class Clause:
    """A clause body attached to the target atom.

    Parameters
    ----------
    anchor : int
        The target argument the path starts from, ``CHAIN`` (-1) for a chain from
        argument 0 to argument 1, or ``RECURSIVE`` (-2) for ``t(X, Y) <- path(X, Z), t(Z, Y)``
        (a path from the first argument to another constant ``Z`` of its type).
    steps : tuple of (str, int, int)
        The predicates traversed, each from one argument position to another.
    end : str or None
        A unary predicate tested at the end of a node path (``None``: the path exists).
    const : str or None
        With no steps: the argument ``anchor`` is this constant (BoostSRL's ``#`` modes), e.g.
        ``accounttype(A, fan)``. Constants belong to one domain: such a clause never maps.
    """

    anchor: int
    steps: tuple[Step, ...]
    end: str | None = None
    const: str | None = None

    def predicates(self) -> set[str]:
        """Predicates the body uses (the target itself not included)."""
        return {s[0] for s in self.steps} | ({self.end} if self.end else set())

    def rename(self, mapping: Mapping[str, str | None]) -> Clause | None:
        """The clause with predicates renamed; ``None`` when one maps to nothing."""
        names = {p: mapping.get(p) for p in self.predicates()}
        if self.const is not None or any(v is None for v in names.values()):
            return None
        steps = tuple((names[p], i, j) for p, i, j in self.steps)
        return Clause(self.anchor, steps, names[self.end] if self.end else None)

    def describe(self, target: str, arity: int) -> str:
        """Prolog-like text, e.g. ``workedunder(A,B) :- movie(C,A), movie(C,B)``."""
        head = [chr(65 + i) for i in range(arity)]
        if self.const is not None:
            head[self.anchor] = self.const
            return f"{target}({','.join(head)})"
        cur = head[0] if self.anchor in (CHAIN, RECURSIVE) else head[self.anchor]
        fresh = iter(chr(65 + i) for i in range(arity, 26))
        body = []
        for n, (pred, i, j) in enumerate(self.steps):
            last = self.anchor == CHAIN and n == len(self.steps) - 1
            nxt = head[1] if last else next(fresh)
            args = ["_"] * (max(i, j) + 1)
            args[i], args[j] = cur, nxt
            body.append(f"{pred}({','.join(args)})")
            cur = nxt
        if self.end:
            body.append(f"{self.end}({cur})")
        if self.anchor == RECURSIVE:
            body.append(f"{target}({','.join([cur, *head[1:]])}), {cur}!=A")
        return f"{target}({','.join(head)}) :- {', '.join(body)}"


class World:
    """A relational domain compiled to sparse matrices, for counting clause groundings.

    Parameters
    ----------
    data : RelationalData
        Its facts define the world; the examples' constants are indexed too.
    values : ndarray, optional
        Probability that each of ``data.examples`` is true (labels when known): the target
        atoms that recursive clauses read. Unknown atoms count as false.
    evidence : iterable of tuple of str
        Target atoms known to be true besides the examples (the training positives, when
        predicting); those with constants unknown to this world are ignored.
    """

    def __init__(
        self,
        data: RelationalData,
        values: np.ndarray | None = None,
        evidence: Iterable[tuple[str, ...]] = (),
    ) -> None:
        self.data = data
        self.evidence = tuple(evidence)
        self.types = dict(data.predicates)
        self.entities = data.entities
        self.index = {t: {c: i for i, c in enumerate(cs)} for t, cs in self.entities.items()}
        self._matrices: dict[tuple[str, int, int], sp.csr_matrix] = {}
        self._nodes: dict[tuple, np.ndarray] = {}
        self.set_values(values)

    def set_values(self, values: np.ndarray | None) -> None:
        """Set the target atoms' probabilities read by recursive clauses."""
        self._values = None if values is None else np.asarray(values, dtype=float)
        self._log_false = None

    def _recursive(self, steps: tuple[Step, ...], idx: np.ndarray) -> np.ndarray:
        """Noisy-or ``1 - prod_{Z != X, path(X, Z)} (1 - P(t(Z, Y)))``: exists for 0/1 values."""
        target = self.data.target
        types = self.types[target]
        if self._log_false is None:
            shape = tuple(self.size(t) for t in types)
            p = np.zeros(shape)
            if self._values is not None:
                ex = self.example_index(self.data.examples, target)
                p[tuple(ex.T)] = np.clip(self._values, 0.0, 1 - 1e-9)
            known = [
                [self.index[t].get(c, -1) for t, c in zip(types, atom, strict=True)]
                for atom in self.evidence
            ]
            known = np.array([k for k in known if min(k) >= 0], dtype=np.int64)
            if len(known):
                p[tuple(known.reshape(-1, len(types)).T)] = 1 - 1e-9
            self._log_false = np.log1p(-p).reshape(shape[0], -1)
        key = (steps, "no-self")
        if key not in self._matrices:
            m = self.matrix(*steps[0])
            for step in steps[1:]:
                m = m @ self.matrix(*step)
            m = sp.csr_matrix(m).tolil()
            m.setdiag(0)  # Z != X: an atom never explains itself
            m = sp.csr_matrix(m)
            m.eliminate_zeros()
            m.data[:] = 1.0  # Z is reached (however many paths): one factor per Z
            self._matrices[key] = m
        logs = self._matrices[key] @ self._log_false  # (|T1|, prod of the other sizes)
        col = idx[:, 1] if idx.shape[1] == 2 else np.zeros(len(idx), dtype=np.int64)
        return 1.0 - np.exp(logs[idx[:, 0], col])

    def size(self, typ: str) -> int:
        """Number of constants of type ``typ``."""
        return len(self.entities.get(typ, ()))

    def matrix(self, pred: str, i: int, j: int) -> sp.csr_matrix:
        """0/1 adjacency from argument ``i`` to argument ``j`` of ``pred`` (others projected)."""
        key = (pred, i, j)
        if key not in self._matrices:
            ti, tj = self.types[pred][i], self.types[pred][j]
            atoms = self.data.facts.get(pred, ())
            rows = np.fromiter((self.index[ti][a[i]] for a in atoms), np.int64, len(atoms))
            cols = np.fromiter((self.index[tj][a[j]] for a in atoms), np.int64, len(atoms))
            m = sp.csr_matrix(
                (np.ones(len(atoms)), (rows, cols)), shape=(self.size(ti), self.size(tj))
            )
            m.data[:] = 1.0  # duplicates (projections of ternary atoms) count once
            self._matrices[key] = m
        return self._matrices[key]

    def unary(self, pred: str) -> np.ndarray:
        """0/1 indicator of ``pred`` over the constants of its type."""
        typ = self.types[pred][0]
        v = np.zeros(self.size(typ))
        for (c,) in self.data.facts.get(pred, ()):
            v[self.index[typ][c]] = 1.0
        return v

    def example_index(self, examples: Iterable[tuple[str, ...]], target: str) -> np.ndarray:
        """Indices ``(n, arity)`` of the examples' constants in their types."""
        types = self.types[target]
        try:
            return np.array(
                [[self.index[t][c] for t, c in zip(types, ex, strict=True)] for ex in examples],
                dtype=np.int64,
            ).reshape(-1, len(types))
        except KeyError as exc:
            raise DataError(f"example of {target!r} with unknown constant {exc}") from None

    def _node_vector(self, clause: Clause) -> np.ndarray:
        key = (clause.steps, clause.end)
        if key not in self._nodes:
            if clause.steps:
                pred, i, j = clause.steps[-1]
                end_type = self.types[pred][j]
            else:
                end_type = self.types[clause.end][0]
            v = self.unary(clause.end) if clause.end else np.ones(self.size(end_type))
            for pred, i, j in reversed(clause.steps):
                v = self.matrix(pred, i, j) @ v
                v = (v > 0).astype(float)  # existence keeps the numbers bounded
            self._nodes[key] = v
        return self._nodes[key]

    def evaluate(self, clause: Clause, idx: np.ndarray) -> np.ndarray:
        """0/1 feature of ``clause`` for the examples at ``idx`` (from :meth:`example_index`)."""
        if clause.const is not None:
            typ = self.types[self.data.target][clause.anchor]
            code = self.index[typ].get(clause.const, -1)
            return (idx[:, clause.anchor] == code).astype(float)
        if clause.anchor == RECURSIVE:
            return self._recursive(clause.steps, idx)
        if clause.anchor != CHAIN:
            return self._node_vector(clause)[idx[:, clause.anchor]]
        steps = clause.steps
        xs, ys = idx[:, 0], idx[:, 1]
        if len(steps) == 1:
            return (np.asarray(self.matrix(*steps[0])[xs, ys]).ravel() > 0).astype(float)
        half = (len(steps) + 1) // 2
        left = self.matrix(*steps[0])[xs]
        for s in steps[1:half]:
            left = left @ self.matrix(*s)
        right = self.matrix(*steps[half])
        for s in steps[half + 1 :]:
            right = right @ self.matrix(*s)
        right = sp.csr_matrix(right.T)[ys]
        return (np.asarray(left.multiply(right).sum(axis=1)).ravel() > 0).astype(float)

    def features(self, clauses: list[Clause], idx: np.ndarray) -> np.ndarray:
        """Matrix ``(n_examples, n_clauses)`` of clause features."""
        out = np.zeros((len(idx), len(clauses)))
        for k, c in enumerate(clauses):
            out[:, k] = self.evaluate(c, idx)
        return out


def enumerate_clauses(
    predicates: Mapping[str, tuple[str, ...]],
    target: str,
    *,
    max_chain_len: int = 2,
    max_node_len: int = 2,
    recursive: bool = True,
    constants: Mapping[int, Iterable[str]] | None = None,
    max_recursive_len: int = 2,
) -> list[Clause]:
    """Every type-consistent clause up to the given path lengths (the hypothesis space).

    Parameters
    ----------
    predicates : mapping of str to tuple of str
        Argument types of the domain's predicates (the target is never used in a body).
    target : str
        The target predicate.
    max_chain_len : int
        Longest chain from the first target argument to the second (binary targets).
    max_node_len : int
        Longest path of a node clause.
    recursive : bool
        Add ``t(X, ..) <- path(X, Z), t(Z, ..)`` for every path of at most
        ``max_recursive_len`` steps from the first argument's type back to it, e.g.
        ``function(X, F), function(Z, F)``: proteins sharing a function share a class.
    constants : mapping of int to iterable of str, optional
        Constants to test target arguments against (``t(A, fan)``), by argument position.
    max_recursive_len : int
        Longest path of a recursive clause.

    Returns
    -------
    clauses : list of Clause
        Sorted, without duplicates.
    """
    steps: list[tuple[Step, str, str]] = []
    unary: dict[str, list[str]] = {}
    for pred, types in sorted(predicates.items()):
        if pred == target:
            continue
        if len(types) == 1:
            unary.setdefault(types[0], []).append(pred)
        for i in range(len(types)):
            for j in range(len(types)):
                if i != j:
                    steps.append(((pred, i, j), types[i], types[j]))
    head = predicates[target]
    out: set[Clause] = set()

    def paths(start: str, length: int, no_reverse: bool):
        frontier = [((), start)]
        yield (), start
        for _ in range(length):
            grown = []
            for path, typ in frontier:
                for step, a, b in steps:
                    if a != typ:
                        continue
                    if no_reverse and path and path[-1] == (step[0], step[2], step[1]):
                        continue  # r(X,Z), r(Z',X) back to the start type adds nothing
                    grown.append((path + (step,), b))
            yield from grown
            frontier = grown

    for anchor, typ in enumerate(head):
        for path, end_type in paths(typ, max_node_len, no_reverse=True):
            if path:
                out.add(Clause(anchor, path, None))
            for u in unary.get(end_type, []):
                out.add(Clause(anchor, path, u))
    for anchor, values in (constants or {}).items():
        out.update(Clause(anchor, (), None, c) for c in values)
    if recursive:  # paths back to the first argument's type
        for path, end_type in paths(head[0], max_recursive_len, no_reverse=False):
            if path and end_type == head[0]:
                out.add(Clause(RECURSIVE, path, None))
    if len(head) == 2:
        for path, end_type in paths(head[0], max_chain_len, no_reverse=False):
            if path and end_type == head[1]:
                out.add(Clause(CHAIN, path, None))
    return sorted(out, key=lambda c: (c.anchor, len(c.steps), c.steps, c.end or "", c.const or ""))
