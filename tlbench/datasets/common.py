"""What every dataset adapter shares: file checks, preprocessing, target splits, task assembly.

Evaluation protocols (``dataset.protocol``):

``transductive``
    The classical protocol of the TCA/JDA papers: every target sample is given, unlabeled, to
    ``fit``, and accuracy is measured on those same samples (minus any that were given labels).
``inductive``
    A seeded, stratified held-out part of the target (``dataset.test_size``) that ``fit`` never
    sees; the rest is the unlabeled (or partly labeled) target training data. Per-domain
    preprocessing statistics of the target come from its training part only.

``dataset.target_labeled`` gives some target training samples their labels (seeded): an
``int`` k labels k samples per class, a ``float`` in (0, 1] labels that fraction of the
source size (as in the TrAdaBoost experiments), ``"all"`` labels every target training sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, DataError, IncompatibleTaskError, MissingDataError
from ..task import UNLABELED, Domain, TransferTask, pool_domains

PROTOCOLS = ("transductive", "inductive")


# --------------------------------------------------------------------------- files


def data_file(data_dir: str | Path, folder: str, filename: str) -> Path:
    """Path of ``data_dir/folder/filename``; a missing file is a :class:`MissingDataError`.

    The message names the file, the folder it was looked for in, and how to get it.
    """
    path = Path(data_dir).expanduser() / folder / filename
    if not path.is_file():
        raise MissingDataError(
            f"data file {filename!r} not found at {path}. Set TLBENCH_DATA_DIR (or "
            f"paths.data_dir) to the folder that holds {folder}/; the benchmark data folder "
            f"describes each file in {folder}/SOURCE.md"
        )
    return path


def load_mat(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Read a MATLAB file and return ``keys``; a corrupt file or a missing key is one error."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DataError(f"cannot read {path} as a MATLAB .mat file: {exc}") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path} lacks variable(s) {missing}; it holds {found}")
    return {k: mat[k] for k in keys}


def labels_from_mat(labels: np.ndarray, path: Path, first: int = 1) -> np.ndarray:
    """MATLAB labels ``first .. first+C-1`` as integers ``0 .. C-1``."""
    y = np.asarray(labels).ravel()
    if y.size == 0 or not np.all(np.equal(np.mod(y, 1), 0)):
        raise DataError(f"{path}: labels must be integers")
    y = y.astype(np.int64) - first
    if y.min() < 0:
        raise DataError(f"{path}: labels below {first} found")
    return y


def load_mat_domain(
    path: Path,
    x_key: str,
    y_key: str,
    *,
    n_features: int | tuple[int, ...],
    num_classes: int,
    first: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Read one domain ``(X, y)`` from a .mat file and check it against the expected format.

    Parameters
    ----------
    path : Path
        The file (from :func:`data_file`).
    x_key, y_key : str
        Names of the feature matrix ``(n, n_features)`` and of the label vector.
    n_features : int or tuple of int
        Expected number of columns of ``X`` (a tuple: any of them).
    num_classes : int
        Labels must lie in ``first .. first + num_classes - 1``.
    first : int
        The smallest label in the file (MATLAB files count from 1).

    Returns
    -------
    X : ndarray of shape (n, n_features)
        The features as stored (not converted: preprocessing does that).
    y : ndarray of int64
        Labels ``0 .. num_classes - 1``.
    """
    mat = load_mat(path, (x_key, y_key))
    X = mat[x_key]
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{path}: {x_key!r} is not a numeric matrix (dtype {X.dtype})")
    if not np.issubdtype(mat[y_key].dtype, np.number):
        raise DataError(f"{path}: {y_key!r} is not a numeric vector (dtype {mat[y_key].dtype})")
    y = labels_from_mat(mat[y_key], path, first=first)
    allowed = (n_features,) if isinstance(n_features, int) else tuple(n_features)
    if X.ndim != 2 or X.shape[0] != len(y) or X.shape[1] not in allowed:
        cols = " or ".join(map(str, allowed))
        raise DataError(
            f"{path}: {x_key!r} has shape {X.shape}; expected ({len(y)}, {cols}), one row "
            f"of {cols} features per label in {y_key!r}"
        )
    if y.max() >= num_classes:
        raise DataError(
            f"{path}: labels up to {y.max() + first} found; "
            f"expected {first}..{first + num_classes - 1}"
        )
    return X, y


def mat_pair_task(
    dataset: str,
    folder: str,
    files: dict[str, str],
    *,
    x_key: str,
    n_features: int | dict[str, int | tuple[int, ...]],
    num_classes: int,
    source: str | Sequence[str],
    target: str,
    data_dir: str | Path,
    preprocess: str,
    protocol: str,
    test_size: float,
    target_labeled: int | float | str | None,
    seed: int,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    paths: dict[str, Path] | None = None,
) -> TransferTask:
    """The task of domains stored as one ``.mat`` file each (features ``x_key``, ``labels``).

    Shared by the Office-Caltech10, MNIST-USPS and COIL20 adapters: checks the domain names
    (``source`` may list several domains, see :func:`parse_sources`), reads and checks the
    files (``data_dir/folder/files[name]``, or ``paths[name]`` where given; ``n_features``
    one width for all, or the accepted widths per domain), applies ``transform`` to each
    domain's features (before the preprocessing), then :func:`make_task` with the adapter's
    options.
    """
    sources = check_domains(dataset, source, target, tuple(files))
    paths = paths or {}
    domains = {}
    for name in (*sources, target):
        path = paths.get(name) or data_file(data_dir, folder, files[name])
        width = n_features[name] if isinstance(n_features, dict) else n_features
        X, y = load_mat_domain(path, x_key, "labels", n_features=width, num_classes=num_classes)
        domains[name] = (X if transform is None else transform(X), y, name)
    return make_task(
        source=[domains[s] for s in sources],
        target=domains[target],
        num_classes=num_classes,
        preprocess_name=preprocess,
        protocol=protocol,
        test_size=test_size,
        target_labeled=target_labeled,
        seed=seed,
        info={
            "files": [
                str(paths[name]) if name in paths else f"{folder}/{files[name]}"
                for name in (*sources, target)
            ]
        },
    )


def parse_sources(source: Any) -> tuple[str, ...]:
    """``dataset.source`` as a tuple of domain names: one name, or a list of several.

    A list names a multi-source task (``dataset.source=[amazon,caltech,dslr]``); a list of
    one is the single-source task of that domain. An empty list, a name that is not a string
    and a name listed twice are :class:`ConfigError`.
    """
    if isinstance(source, str):
        return (source,)
    if isinstance(source, Sequence) or type(source).__name__ == "ListConfig":
        names = tuple(source)
    else:
        raise ConfigError(
            f"dataset.source must be a domain name or a list of names, got {source!r}"
        )
    if not names:
        raise ConfigError("dataset.source is an empty list; name at least one source domain")
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ConfigError(f"dataset.source lists {bad[0]!r}, which is not a domain name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"dataset.source lists {', '.join(map(repr, repeated))} more than once; "
            "name each source domain once"
        )
    return names


def check_domains(
    dataset: str, source: str | Sequence[str], target: str, valid: Sequence[str]
) -> tuple[str, ...]:
    """Check that ``source`` and ``target`` name known domains, and different ones.

    Returns the source names (:func:`parse_sources`). An unknown or repeated name is a
    :class:`ConfigError`; the target among the sources is an
    :class:`IncompatibleTaskError`, which the runner records as ``skipped``.
    """
    sources = parse_sources(source)
    for role, name in [*(("source", s) for s in sources), ("target", target)]:
        if name not in valid:
            raise ConfigError(
                f"dataset {dataset!r} has no domain {name!r} (dataset.{role}); "
                f"valid domains: {', '.join(valid)}"
            )
    if target in sources:
        # skipped, not failed: a 4 x 4 sweep over source and target must finish
        if len(sources) == 1:
            raise IncompatibleTaskError(
                f"dataset.source and dataset.target are both {target!r}: nothing to transfer"
            )
        raise IncompatibleTaskError(
            f"dataset.source lists the target {target!r}: a target cannot also be a source"
        )
    return sources


# --------------------------------------------------------------------------- preprocessing


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.todense()) if sp.issparse(X) else np.asarray(X, dtype=np.float64)


def _rows(X: Any, norm: str) -> Any:
    X = X.astype(np.float64)
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if norm == "l1":
            scale = np.asarray(abs(X).sum(axis=1)).ravel()
        else:
            scale = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        scale[scale == 0] = 1.0
        return sp.diags(1.0 / scale) @ X
    scale = np.abs(X).sum(axis=1) if norm == "l1" else np.linalg.norm(X, axis=1)
    scale[scale == 0] = 1.0
    return X / scale[:, None]


def _zscore(fit: Any, arrays: Sequence[Any]) -> list[np.ndarray]:
    fit = _dense(fit)
    mean = fit.mean(axis=0)
    std = fit.std(axis=0)  # population std (ddof=0), as the published preprocessing
    std[std == 0] = 1.0
    return [(_dense(a) - mean) / std for a in arrays]


def _stateless(fn: Callable[[Any], Any]) -> Callable[[Any, Sequence[Any]], list[Any]]:
    return lambda fit, arrays: [fn(a) for a in arrays]


#: name -> f(X_fit, [X, ...]) -> [X', ...]. Statistics (z-score) come from ``X_fit``, the
#: domain's training samples; row-wise normalisations need none.
PREPROCESSORS: dict[str, Callable[[Any, Sequence[Any]], list[Any]]] = {
    "none": _stateless(lambda X: X.astype(np.float64)),
    "l1": _stateless(lambda X: _rows(X, "l1")),
    "l2": _stateless(lambda X: _rows(X, "l2")),
    "zscore": _zscore,
    "l1_zscore": lambda fit, arrays: _zscore(_rows(fit, "l1"), [_rows(a, "l1") for a in arrays]),
    "binary": _stateless(lambda X: (X != 0).astype(np.float64)),
}


def preprocess(name: str, fit: Any, *arrays: Any) -> list[Any]:
    """Apply preprocessing ``name`` to ``arrays`` with statistics of ``fit`` (same domain)."""
    if name not in PREPROCESSORS:
        raise ConfigError(
            f"unknown dataset.preprocess {name!r}; choose one of {', '.join(PREPROCESSORS)}"
        )
    return PREPROCESSORS[name](fit, arrays)


# --------------------------------------------------------------------------- target splits


def _per_class_sample(
    y: np.ndarray, count: int, rng: np.random.Generator, where: str
) -> np.ndarray:
    chosen = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if count > len(idx):
            raise ConfigError(
                f"dataset.target_labeled={count} per class, but class {c} of {where} has "
                f"only {len(idx)} samples"
            )
        chosen.append(rng.choice(idx, size=count, replace=False))
    return np.sort(np.concatenate(chosen))


def _stratified_sample(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices, classes in proportion (largest remainders), at least one per class."""
    classes, counts = np.unique(y, return_counts=True)
    size = int(np.clip(size, min(len(classes), len(y)), len(y)))
    quota = counts * size / len(y)
    take = np.minimum(np.maximum(np.floor(quota).astype(int), 1), counts)
    order = np.argsort(-(quota - np.floor(quota)))
    i = 0
    while take.sum() < size:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    while take.sum() > size:
        c = int(np.argmax(take))
        take[c] -= 1
    picked = [
        rng.choice(np.flatnonzero(y == c), size=k, replace=False)
        for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def labeled_indices(
    y: np.ndarray, target_labeled: int | float | str | None, n_source: int, seed: int
) -> np.ndarray:
    """Indices of target training samples that keep their label (see the module docstring)."""
    rng = np.random.default_rng([seed, 1])
    if target_labeled is None or (
        not isinstance(target_labeled, str | bool) and target_labeled == 0
    ):
        return np.arange(0)
    if target_labeled == "all":
        return np.arange(len(y))
    if isinstance(target_labeled, bool | str):
        raise ConfigError(
            f"dataset.target_labeled must be a count per class, a fraction of the source size "
            f"or 'all'; got {target_labeled!r}"
        )
    if isinstance(target_labeled, int | np.integer):
        if target_labeled < 0:
            raise ConfigError(f"dataset.target_labeled must be >= 0, got {target_labeled}")
        return _per_class_sample(y, int(target_labeled), rng, "the target")
    frac = float(target_labeled)
    if not 0 < frac <= 1:
        raise ConfigError(f"dataset.target_labeled as a fraction must be in (0, 1], got {frac}")
    return _stratified_sample(y, max(1, round(frac * n_source)), rng)


def split_target(
    y: np.ndarray, protocol: str, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of the target samples under ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"unknown dataset.protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        )
    all_idx = np.arange(len(y))
    if protocol == "transductive":
        return all_idx, all_idx
    if not 0 < test_size < 1:
        raise ConfigError(f"dataset.test_size must be in (0, 1), got {test_size}")
    test = _stratified_sample(y, round(test_size * len(y)), np.random.default_rng([seed, 0]))
    return np.setdiff1d(all_idx, test), test


def make_task(
    *,
    source: tuple[Any, np.ndarray, str] | list[tuple[Any, np.ndarray, str]],
    target: tuple[Any, np.ndarray, str],
    num_classes: int,
    preprocess_name: str = "none",
    protocol: str = "transductive",
    test_size: float = 0.3,
    target_labeled: int | float | str | None = 0,
    seed: int = 0,
    kind: str = "tabular",
    test: tuple[Any, np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
) -> TransferTask:
    """Assemble a :class:`TransferTask` from raw source and target arrays.

    Parameters
    ----------
    source, target : tuple (X, y, name)
        Raw features, integer labels ``0..C-1`` and domain name. ``source`` may be a list of
        such tuples: a multi-source task, each source preprocessed with its own statistics,
        then pooled (:func:`~tlbench.task.pool_domains`); a list of one is a single source.
    num_classes : int
        Number of classes.
    preprocess_name : str
        A key of :data:`PREPROCESSORS`, applied per domain.
    protocol : {"transductive", "inductive"}
        See the module docstring.
    test_size : float
        Held-out fraction of the target for the inductive protocol.
    target_labeled : int, float, "all" or None
        Target training samples that keep their labels (see the module docstring).
    seed : int
        Seeds the target split and the choice of labeled target samples.
    kind : str
        The task kind.
    test : tuple (X, y), optional
        An explicit target test set (e.g. the ``*_test`` files of the Amazon reviews); it
        replaces the split for the inductive protocol.
    info : dict, optional
        Extra facts for the result record.

    Returns
    -------
    task : TransferTask
    """
    sources = source if isinstance(source, list) else [source]
    Xt, yt, target_name = target
    if test is not None and protocol == "inductive":
        train_idx = np.arange(len(yt))
        Xtest, ytest = test
    else:
        train_idx, test_idx = split_target(yt, protocol, test_size, seed)
        Xtest, ytest = Xt[test_idx], yt[test_idx]
    Xtrain, ytrain = Xt[train_idx], yt[train_idx]
    source_domain = pool_domains(
        [
            Domain(preprocess(preprocess_name, Xs, Xs)[0], ys.astype(np.int64), name=name)
            for Xs, ys, name in sources
        ]
    )
    Xtrain, Xtest = preprocess(preprocess_name, Xtrain, Xtrain, Xtest)

    lab = labeled_indices(ytrain, target_labeled, len(source_domain), seed)
    if protocol == "transductive" and len(lab) == len(ytrain):
        raise ConfigError(
            "dataset.target_labeled labels every target sample, which leaves nothing to test on "
            "under the transductive protocol; use dataset.protocol=inductive"
        )
    y_target = None
    if len(lab):
        y_target = np.full(len(ytrain), UNLABELED, dtype=np.int64)
        y_target[lab] = ytrain[lab]
        if protocol == "transductive":
            # the labeled samples are training data; score on the rest only
            rest = np.setdiff1d(np.arange(len(ytrain)), lab)
            Xtest, ytest = Xtrain[rest], ytrain[rest]
    record = {
        "preprocess": preprocess_name,
        "n_target_labeled": int(len(lab)),
        "target_labeled": target_labeled,
        **(info or {}),
    }
    if protocol == "inductive":
        record["test_size"] = test_size if test is None else "given"
    if len(sources) > 1:
        record["sources"] = [name for _, _, name in sources]
    return TransferTask(
        source=source_domain,
        target=Domain(Xtrain, y_target, name=target_name),
        test=Domain(Xtest, ytest.astype(np.int64), name=target_name),
        kind=kind,
        num_classes=int(num_classes),
        protocol=protocol,
        info=record,
    )
