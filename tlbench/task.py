"""The data contract: :class:`Domain`, :class:`TransferTask` and :class:`RelationalData`.

Every dataset adapter returns a :class:`TransferTask`; every method's ``fit`` receives one with
``test=None`` (the runner alone touches the held-out target data). Construction validates the
data, so a malformed adapter or plugin fails with one clear :class:`~tlbench.errors.DataError`
instead of a traceback deep inside numpy or scikit-learn.

Multi-source tasks (``dataset.source=[a,b,c]``) keep the same shape: ``task.source`` is the
pooled source, one :class:`Domain` whose ``domain_index`` says which source each sample comes
from (``domain_names`` lists them). A single-source method reads the pooled source as it reads
any source; a multi-source method splits it with :attr:`TransferTask.sources`. Single-source
tasks have ``domain_index=None`` and are exactly what they were before multi-source tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .errors import DataError

TaskKind = Literal["tabular", "image", "relational"]
TASK_KINDS: tuple[str, ...] = ("tabular", "image", "relational")
UNLABELED = -1  # scikit-learn / skada convention for a single unlabeled sample


@dataclass(frozen=True)
class RelationalData:
    """A relational domain: typed predicates, ground facts and examples of a target predicate.

    Parameters
    ----------
    predicates : mapping of str to tuple of str
        Every predicate's argument types, e.g. ``{"contact": ("person", "person")}``. It includes
        the target predicate.
    facts : mapping of str to tuple of tuple of str
        Ground atoms (the background knowledge) per predicate, as tuples of constants. Atoms of
        the target predicate are not facts: they are the examples.
    target : str
        The predicate to learn.
    examples : tuple of tuple of str
        Atoms of the target predicate to classify; their labels (1 true, 0 false) are the
        ``y`` of the :class:`Domain` that holds this object.
    fold : ndarray of int, optional
        The cross-validation fold of each example (``None``: a single fold).
    name : str
        The domain's name.
    """

    predicates: Mapping[str, tuple[str, ...]]
    facts: Mapping[str, tuple[tuple[str, ...], ...]]
    target: str
    examples: tuple[tuple[str, ...], ...]
    fold: np.ndarray | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.target not in self.predicates:
            raise DataError(
                f"relational domain {self.name!r}: target predicate {self.target!r} is not "
                f"among its predicates {sorted(self.predicates)}"
            )
        for pred, atoms in self.facts.items():
            if pred not in self.predicates:
                raise DataError(f"relational domain {self.name!r}: facts of undeclared {pred!r}")
            arity = len(self.predicates[pred])
            bad = next((a for a in atoms if len(a) != arity), None)
            if bad is not None:
                raise DataError(
                    f"relational domain {self.name!r}: fact {pred}{bad} has {len(bad)} arguments,"
                    f" the predicate declares {arity}"
                )
        arity = len(self.predicates[self.target])
        bad = next((a for a in self.examples if len(a) != arity), None)
        if bad is not None:
            raise DataError(
                f"relational domain {self.name!r}: example {self.target}{bad} has wrong arity"
            )
        if self.fold is not None and len(self.fold) != len(self.examples):
            raise DataError(
                f"relational domain {self.name!r}: {len(self.fold)} fold ids for "
                f"{len(self.examples)} examples"
            )

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def entities(self) -> dict[str, tuple[str, ...]]:
        """Constants of each type, collected from the facts and examples."""
        found: dict[str, set[str]] = {t: set() for ts in self.predicates.values() for t in ts}
        atoms = [(p, a) for p, group in self.facts.items() for a in group]
        atoms += [(self.target, a) for a in self.examples]
        for pred, atom in atoms:
            for typ, const in zip(self.predicates[pred], atom, strict=True):
                found[typ].add(const)
        return {t: tuple(sorted(c)) for t, c in found.items()}

    def subset(self, index: np.ndarray) -> RelationalData:
        """The same world with only the examples at ``index`` (facts are shared)."""
        index = np.asarray(index, dtype=int)
        return replace(
            self,
            examples=tuple(self.examples[i] for i in index),
            fold=None if self.fold is None else self.fold[index],
        )


@dataclass(frozen=True)
class Domain:
    """The samples of one domain.

    Parameters
    ----------
    X : ndarray, sparse matrix, torch Dataset or RelationalData
        Tabular features ``(n, d)``, images ``(n, C, H, W)`` or a ``torch.utils.data.Dataset``
        of images, or a relational world.
    y : ndarray of int, optional
        Labels in ``0 .. num_classes - 1``. ``None``: the domain is unlabeled; ``-1`` marks a
        single unlabeled sample (partly labeled domain).
    weight : ndarray of float, optional
        Per-sample weights (scikit-learn's ``sample_weight``), e.g. set by a reweighting method.
    name : str
        The domain's name (``"amazon"``, ``"mnist"``...; ``"amazon+caltech+dslr"`` for pooled
        sources).
    domain_index : ndarray of int, optional
        For pooled sources: the index into ``domain_names`` of each sample's own domain.
        ``None`` for a single domain.
    domain_names : tuple of str
        The names of the pooled domains (empty for a single domain).
    """

    X: Any
    y: np.ndarray | None = None
    weight: np.ndarray | None = None
    name: str = ""
    domain_index: np.ndarray | None = None
    domain_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return _n_samples(self.X)

    @property
    def n_labeled(self) -> int:
        """Number of samples with a label."""
        return 0 if self.y is None else int(np.sum(self.y != UNLABELED))

    def labeled(self) -> Domain:
        """The labeled samples only (tabular arrays and relational data)."""
        if self.y is None:
            return self.subset(np.arange(0))
        return self.subset(np.flatnonzero(self.y != UNLABELED))

    def unlabeled(self) -> Domain:
        """The domain without its labels."""
        return replace(self, y=None)

    def subset(self, index: np.ndarray) -> Domain:
        """The samples at ``index``."""
        index = np.asarray(index, dtype=int)
        if isinstance(self.X, RelationalData):
            X = self.X.subset(index)
        elif isinstance(self.X, np.ndarray) or sp.issparse(self.X):
            X = self.X[index]
        elif hasattr(self.X, "subset"):  # e.g. ImageFiles keeps its file list
            X = self.X.subset(index)
        else:
            import torch.utils.data

            X = torch.utils.data.Subset(self.X, index.tolist())
        return Domain(
            X=X,
            y=None if self.y is None else self.y[index],
            weight=None if self.weight is None else self.weight[index],
            name=self.name,
            domain_index=None if self.domain_index is None else self.domain_index[index],
            domain_names=self.domain_names,
        )

    def split_domains(self) -> tuple[Domain, ...]:
        """The pooled domains one by one (``(self,)`` for a single domain).

        Each part keeps its samples' order, labels and weights and carries its own name; an
        empty part (e.g. after a held-out split) is left out.
        """
        if self.domain_index is None:
            return (self,)
        parts = []
        for k, name in enumerate(self.domain_names):
            index = np.flatnonzero(self.domain_index == k)
            if len(index):
                part = self.subset(index)
                parts.append(replace(part, name=name, domain_index=None, domain_names=()))
        return tuple(parts)


def pool_domains(domains: list[Domain] | tuple[Domain, ...]) -> Domain:
    """Stack single domains (same kind of ``X``) into one pooled :class:`Domain`.

    One domain is returned as it is (a single-source task stays single-source). The pooled
    domain is named ``"a+b+c"`` and records each sample's domain in ``domain_index``.
    """
    if len(domains) == 1:
        return domains[0]
    names = tuple(d.name for d in domains)
    if len(set(names)) != len(names):
        raise DataError(f"pooled domains must have distinct names, got {list(names)}")
    Xs = [d.X for d in domains]
    if all(isinstance(X, np.ndarray) for X in Xs):
        X = np.concatenate(Xs, axis=0)
    elif all(isinstance(X, np.ndarray) or sp.issparse(X) for X in Xs):
        X = sp.vstack([sp.csr_matrix(X) for X in Xs], format="csr")
    else:
        raise DataError("only array domains (dense or sparse) can be pooled")
    labeled = [d.y is not None for d in domains]
    if any(labeled) and not all(labeled):
        raise DataError("pooled domains must all be labeled or all unlabeled")
    weighted = [d.weight is not None for d in domains]
    return Domain(
        X=X,
        y=np.concatenate([d.y for d in domains]) if all(labeled) else None,
        weight=(
            np.concatenate([d.weight if d.weight is not None else np.ones(len(d)) for d in domains])
            if any(weighted)
            else None
        ),
        name="+".join(names),
        domain_index=np.concatenate(
            [np.full(len(d), k, dtype=np.int64) for k, d in enumerate(domains)]
        ),
        domain_names=names,
    )


@dataclass(frozen=True)
class TransferTask:
    """One transfer problem: labeled source, target training data, held-out target test data.

    Parameters
    ----------
    source : Domain
        Labeled source data.
    target : Domain
        The target data a method may train on: unlabeled (``y=None``), partly labeled
        (``-1`` marks unlabeled samples) or labeled.
    test : Domain or None
        Labeled target data to evaluate on; only the runner reads it. Methods receive
        ``task.without_test()``.
    kind : {"tabular", "image", "relational"}
        What ``X`` holds.
    num_classes : int
        Number of classes (2 for a relational target predicate: false / true).
    protocol : str
        How ``target`` and ``test`` were made: ``"transductive"`` (the same target samples,
        unlabeled in ``target``) or ``"inductive"`` (a held-out split).
    info : dict
        Free-form facts the adapter wants in the result record (preprocessing, file names...).
    """

    source: Domain
    target: Domain
    test: Domain | None
    kind: TaskKind
    num_classes: int
    protocol: str = "inductive"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_task(self)

    def without_test(self) -> TransferTask:
        """The task as a method sees it: no held-out test data."""
        return replace(self, test=None)

    @property
    def sources(self) -> tuple[Domain, ...]:
        """The labeled source domains one by one (one for a single-source task)."""
        return self.source.split_domains()

    @property
    def source_names(self) -> tuple[str, ...]:
        """The names of the source domains."""
        return self.source.domain_names or (self.source.name,)

    @property
    def is_multi_source(self) -> bool:
        """Whether the source pools two or more domains."""
        return len(self.source_names) > 1

    @property
    def feature_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample for array data, ``None`` otherwise."""
        X = self.source.X
        if isinstance(X, np.ndarray) or sp.issparse(X):
            return tuple(X.shape[1:])
        return None


def _n_samples(X: Any) -> int:
    if isinstance(X, RelationalData):
        return len(X)
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return int(X.shape[0])
    return len(X)


def validate_task(task: TransferTask) -> None:
    """Check a task's shapes, values and labels; raise :class:`DataError` naming the problem."""
    if task.kind not in TASK_KINDS:
        raise DataError(f"unknown task kind {task.kind!r}; expected one of {TASK_KINDS}")
    if not isinstance(task.num_classes, int | np.integer) or task.num_classes < 2:
        raise DataError(f"num_classes must be an integer >= 2, got {task.num_classes!r}")
    parts = [("source", task.source), ("target", task.target)]
    if task.test is not None:
        parts.append(("test", task.test))
    shapes = {}
    for role, dom in parts:
        where = f"{role} domain {dom.name!r}" if dom.name else f"{role} domain"
        n = len(dom)
        if n == 0:
            raise DataError(f"the {where} is empty")
        if task.kind == "relational":
            if not isinstance(dom.X, RelationalData):
                raise DataError(f"the {where} of a relational task must hold RelationalData")
        elif isinstance(dom.X, np.ndarray) or sp.issparse(dom.X):
            shapes[role] = _check_array(dom.X, task.kind, where)
        if dom.y is not None:
            _check_labels(dom.y, n, task.num_classes, where)
        if dom.weight is not None:
            w = np.asarray(dom.weight)
            if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise DataError(f"the {where} has weights that are not {n} finite values >= 0")
        if dom.domain_index is not None:
            _check_domain_index(dom, n, where)
    if task.source.y is None or task.source.n_labeled == 0:
        raise DataError("the source domain must be labeled")
    if task.target.name and task.target.name in task.source.domain_names:
        raise DataError(f"the target domain {task.target.name!r} is also one of the sources")
    if task.test is not None and (task.test.y is None or task.test.n_labeled != len(task.test)):
        raise DataError("every test sample must be labeled (the runner scores on them)")
    if len(set(shapes.values())) > 1:
        detail = ", ".join(f"{r} {s}" for r, s in shapes.items())
        raise DataError(f"source and target samples differ in shape: {detail}")


def _check_domain_index(dom: Domain, n: int, where: str) -> None:
    index, names = np.asarray(dom.domain_index), dom.domain_names
    if index.shape != (n,) or not np.issubdtype(index.dtype, np.integer):
        raise DataError(f"the {where} has a domain_index that is not {n} integers")
    if len(set(names)) != len(names) or len(names) < 2:
        raise DataError(f"the {where} pools {list(names)}: two or more distinct names needed")
    if len(index) and (index.min() < 0 or index.max() >= len(names)):
        raise DataError(f"the {where} has domain_index values outside 0..{len(names) - 1}")


def _check_array(X: Any, kind: str, where: str) -> tuple[int, ...]:
    if kind == "tabular" and X.ndim != 2:
        raise DataError(f"the {where} must be a 2-D array (n_samples, n_features), got {X.shape}")
    if kind == "image" and X.ndim != 4:
        raise DataError(f"the {where} must hold images (n, C, H, W), got shape {X.shape}")
    values = X.data if sp.issparse(X) else X
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(f"the {where} has non-numeric features (dtype {values.dtype})")
    finite = np.isfinite(values)
    if not finite.all():
        n_nan = int(np.isnan(values).sum())
        n_inf = int((~finite).sum()) - n_nan
        parts = [f"{n} {what}" for n, what in ((n_nan, "NaN"), (n_inf, "infinite")) if n]
        raise DataError(f"the {where} has {' and '.join(parts)} feature value(s)")
    return tuple(X.shape[1:])


def _check_labels(y: np.ndarray, n: int, num_classes: int, where: str) -> None:
    y = np.asarray(y)
    if y.shape != (n,):
        raise DataError(f"the {where} has {n} samples but labels of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"the {where} has non-integer labels (dtype {y.dtype})")
    bad = (y < UNLABELED) | (y >= num_classes)
    if bad.any():
        raise DataError(
            f"the {where} has labels out of range: {sorted(set(y[bad].tolist()))[:5]} "
            f"(expected 0..{num_classes - 1}, or -1 for unlabeled)"
        )
