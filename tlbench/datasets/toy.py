"""Built-in generated domains: no files, seeded, fast. Used as defaults and in the tests.

- ``toy_shift``: tabular data under covariate shift (the default dataset).
- ``toy_images``: tiny image domains (striped patterns; the target is recoloured and noisier).
- ``toy_relational``: an epidemic domain and a computer-network domain related by a planted
  predicate renaming (person->host, contact->link, carrier->malicious, vaccinated->patched,
  infected->compromised).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..registry import register_dataset
from ..task import Domain, RelationalData, TransferTask
from .common import check_domains, make_task


def _labels_covariate(X: np.ndarray, n_classes: int) -> np.ndarray:
    # one fixed, non-linear labelling function for both domains: p(y|x) does not change
    score = X[:, 0] + 0.8 * np.sin(2.0 * X[:, 1]) + 0.3 * X[:, 1] ** 2
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]) if n_classes > 2 else [0.5]
    return np.digitize(score, edges).astype(np.int64)


@register_dataset(
    "toy_shift",
    kind="tabular",
    domains=("source", "target"),
    description="generated tabular domains under covariate or translation shift (the default)",
)
def toy_shift(
    *,
    n_source: int = 300,
    n_target: int = 300,
    n_features: int = 5,
    n_classes: int = 2,
    shift: str = "covariate",
    shift_size: float = 1.5,
    noise: float = 0.1,
    protocol: str = "inductive",
    test_size: float = 0.3,
    target_labeled: int | float | str | None = 0,
    seed: int = 0,
) -> TransferTask:
    """Two generated tabular domains.

    Parameters
    ----------
    n_source, n_target : int
        Samples per domain.
    n_features : int
        Dimension (>= 2); the labels depend on the first two features.
    n_classes : int
        Number of classes.
    shift : {"covariate", "translation"}
        ``covariate``: the target inputs come from a shifted Gaussian, labels follow the same
        p(y|x) (the setting of instance reweighting). ``translation``: the target domain is
        the source domain translated and rotated, labels move with the samples (the setting of
        feature alignment).
    shift_size : float
        Strength of the shift.
    noise : float
        Fraction of labels flipped at random.
    protocol, test_size, target_labeled, seed
        See :mod:`tlbench.datasets.common`.

    Returns
    -------
    task : TransferTask
    """
    if n_features < 2 or n_classes < 2 or min(n_source, n_target) < 2 * n_classes:
        raise ConfigError(
            "toy_shift needs n_features >= 2, n_classes >= 2 and at least two samples per class"
        )
    if shift not in ("covariate", "translation"):
        raise ConfigError(f"unknown toy_shift shift {shift!r}; choose covariate or translation")
    rng = np.random.default_rng(seed)
    if shift == "covariate":
        Xs = rng.normal(0.0, 1.0, (n_source, n_features))
        mean_t = np.zeros(n_features)
        mean_t[:2] = shift_size * np.array([0.6, 0.8])
        Xt = rng.normal(mean_t, 0.7, (n_target, n_features))
        ys, yt = _labels_covariate(Xs, n_classes), _labels_covariate(Xt, n_classes)
    else:
        centers = rng.normal(0.0, 2.0, (n_classes, n_features))
        ys = rng.integers(0, n_classes, n_source)
        yt = rng.integers(0, n_classes, n_target)
        Xs = centers[ys] + rng.normal(0, 1.0, (n_source, n_features))
        angle = 0.4 * shift_size
        rot = np.eye(n_features)
        rot[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        Xt = (centers[yt] + rng.normal(0, 1.0, (n_target, n_features))) @ rot.T + shift_size
    for y in (ys, yt):
        flip = rng.random(len(y)) < noise
        y[flip] = rng.integers(0, n_classes, flip.sum())
    return make_task(
        source=(Xs, ys, "source"),
        target=(Xt, yt, "target"),
        num_classes=n_classes,
        protocol=protocol,
        test_size=test_size,
        target_labeled=target_labeled,
        seed=seed,
        info={"shift": shift, "shift_size": shift_size},
    )


#: The domains of ``toy_multisource``: how far each source lies from the target, and whether
#: its labels follow the target's labelling function.
MULTISOURCE_DOMAINS = ("near", "far", "flipped", "target")


@register_dataset(
    "toy_multisource",
    kind="tabular",
    multi_source=True,
    domains=MULTISOURCE_DOMAINS,
    description="generated tabular domains: three sources (near, far, flipped labels), one target",
)
def toy_multisource(
    *,
    source: str | list[str] = ("near", "far", "flipped"),
    target: str = "target",
    n_per_domain: int = 200,
    n_features: int = 5,
    n_classes: int = 2,
    shift_size: float = 1.5,
    noise: float = 0.05,
    protocol: str = "inductive",
    test_size: float = 0.3,
    target_labeled: int | float | str | None = 0,
    seed: int = 0,
) -> TransferTask:
    """Generated domains for multi-source transfer: one source helps, two mislead.

    Every domain is a Gaussian cloud in ``n_features`` dimensions labelled by thresholds of
    one score of the first two features. The target is centred at ``shift_size * (0.6, 0.8)``;
    ``near`` lies close to it with the same labels; ``far`` lies on the other side of the
    origin (same labelling function, little overlap with the target); ``flipped`` covers the
    target's region with the classes in reverse order (a concept shift: pooling it in hurts).

    Parameters
    ----------
    source : str or list of str
        Source domain(s) among ``near``, ``far``, ``flipped`` (default: all three).
    target : str
        The target domain (``target``; any other domain name is accepted too).
    n_per_domain, n_features, n_classes : int
        Sizes.
    shift_size : float
        Distance of the target from the origin.
    noise : float
        Fraction of labels drawn at random.
    protocol, test_size, target_labeled, seed
        See :mod:`tlbench.datasets.common`.

    Returns
    -------
    task : TransferTask
    """
    if isinstance(source, tuple):
        source = list(source)
    sources = check_domains("toy_multisource", source, target, MULTISOURCE_DOMAINS)
    if n_features < 2 or n_classes < 2 or n_per_domain < 4 * n_classes:
        raise ConfigError(
            "toy_multisource needs n_features >= 2, n_classes >= 2 and n_per_domain >= "
            "4 * n_classes"
        )
    rng = np.random.default_rng(seed)
    centre = np.zeros(n_features)
    centre[:2] = shift_size * np.array([0.6, 0.8])
    specs = {"target": (centre, 0.7), "near": (0.8 * centre, 0.8), "far": (-centre, 0.8),
             "flipped": (centre, 0.8)}  # fmt: skip

    def score(X: np.ndarray) -> np.ndarray:
        return X[:, 0] + 0.8 * np.sin(2.0 * X[:, 1]) + 0.3 * X[:, 1] ** 2

    # one labelling function for all domains: thresholds fixed on a reference target cloud
    ref = np.random.default_rng(12345).normal(centre, 0.7, (4000, n_features))
    edges = np.quantile(score(ref), np.linspace(0, 1, n_classes + 1)[1:-1])
    domains = {}
    for name in (*sources, target):
        mean, std = specs.get(name, specs["target"])
        X = rng.normal(mean, std, (n_per_domain, n_features))
        y = np.digitize(score(X), edges).astype(np.int64)
        if name == "flipped":
            y = n_classes - 1 - y
        wrong = rng.random(len(y)) < noise
        y[wrong] = rng.integers(0, n_classes, wrong.sum())
        domains[name] = (X, y, name)
    return make_task(
        source=[domains[s] for s in sources],
        target=domains[target],
        num_classes=n_classes,
        protocol=protocol,
        test_size=test_size,
        target_labeled=target_labeled,
        seed=seed,
        info={"shift_size": shift_size},
    )


def _patterns(n: int, n_classes: int, size: int, rng: np.random.Generator) -> tuple:
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    grid = np.arange(size)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    for i, c in enumerate(y):
        # class c: stripes at angle c * pi / n_classes, random phase and stripe width
        angle = np.pi * c / n_classes
        period = rng.uniform(3.0, 5.0)
        u = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None]
        images[i] = (np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)) > 0)[None]
    return images, y.astype(np.int64)


@register_dataset(
    "toy_images",
    kind="image",
    domains=("source", "target"),
    description="tiny generated image domains: striped patterns; the target is recoloured",
)
def toy_images(
    *,
    n_source: int = 120,
    n_target: int = 120,
    n_classes: int = 3,
    image_size: int = 16,
    noise: float = 0.2,
    protocol: str = "inductive",
    test_size: float = 0.3,
    target_labeled: int | float | str | None = 0,
    seed: int = 0,
) -> TransferTask:
    """Two generated image domains of shape (3, image_size, image_size).

    The class is the orientation of a stripe pattern. Source images are white stripes on black
    with little noise; target images are coloured stripes on a grey background with more noise
    (a change of appearance, the same semantics).

    Parameters
    ----------
    n_source, n_target, n_classes, image_size : int
        Sizes.
    noise : float
        Standard deviation of the target's pixel noise (the source gets a quarter of it).
    protocol, test_size, target_labeled, seed
        See :mod:`tlbench.datasets.common`.

    Returns
    -------
    task : TransferTask
    """
    if n_classes < 2 or image_size < 8:
        raise ConfigError("toy_images needs n_classes >= 2 and image_size >= 8")
    rng = np.random.default_rng(seed)
    Xs, ys = _patterns(n_source, n_classes, image_size, rng)
    Xs += rng.normal(0, noise / 4, Xs.shape).astype(np.float32)
    Xt, yt = _patterns(n_target, n_classes, image_size, rng)
    colour = np.array([0.9, 0.5, 0.1], dtype=np.float32)[None, :, None, None]
    Xt = 0.4 + 0.5 * Xt * colour + rng.normal(0, noise, Xt.shape).astype(np.float32)
    return make_task(
        source=(Xs, ys, "source"),
        target=(Xt.astype(np.float32), yt, "target"),
        num_classes=n_classes,
        protocol=protocol,
        test_size=test_size,
        target_labeled=target_labeled,
        seed=seed,
        kind="image",
    )


#: The planted renaming from the epidemic domain to the network domain.
TOY_RELATIONAL_MAPPING = {
    "person": "host",
    "contact": "link",
    "carrier": "malicious",
    "vaccinated": "patched",
    "household": "subnet",
    "infected": "compromised",
}


def _epidemic(n: int, degree: float, rng: np.random.Generator, names: dict, prefix: str):
    """One world: a contact graph; infected(x) <=> contact with a carrier and not vaccinated."""
    ent = [f"{prefix}{i}" for i in range(n)]
    n_edges = int(n * degree / 2)
    a, b = rng.integers(0, n, n_edges), rng.integers(0, n, n_edges)
    keep = a != b
    edges = {(min(i, j), max(i, j)) for i, j in zip(a[keep], b[keep], strict=True)}
    carrier = rng.random(n) < 0.15
    vaccinated = rng.random(n) < 0.3
    exposed = np.zeros(n, bool)
    for i, j in edges:
        exposed[i] |= carrier[j]
        exposed[j] |= carrier[i]
    label = (exposed & ~vaccinated).astype(np.int64)
    flip = rng.random(n) < 0.03
    label[flip] = 1 - label[flip]
    household = rng.integers(0, max(2, n // 5), n)  # a distractor relation
    same = [
        (ent[i], ent[j]) for i in range(n) for j in range(i + 1, n) if household[i] == household[j]
    ]
    facts = {
        names["contact"]: tuple((ent[i], ent[j]) for i, j in sorted(edges))
        + tuple((ent[j], ent[i]) for i, j in sorted(edges)),
        names["carrier"]: tuple((ent[i],) for i in np.flatnonzero(carrier)),
        names["vaccinated"]: tuple((ent[i],) for i in np.flatnonzero(vaccinated)),
        names["household"]: tuple(same),
    }
    return facts, tuple((e,) for e in ent), label


def _relational_domain(n: int, n_folds: int, degree: float, seed: int, names: dict, tag: str):
    rng = np.random.default_rng(seed)
    t = names["person"]
    predicates = {
        names["contact"]: (t, t),
        names["carrier"]: (t,),
        names["vaccinated"]: (t,),
        names["household"]: (t, t),
        names["infected"]: (t,),
    }
    facts: dict[str, tuple] = {p: () for p in predicates if p != names["infected"]}
    examples, labels, folds = [], [], []
    for k in range(n_folds):  # each fold is a separate world (as in the relational benchmarks)
        f, ex, y = _epidemic(n, degree, rng, names, f"{tag}{k}_")
        for p, atoms in f.items():
            facts[p] = facts[p] + atoms
        examples += ex
        labels.append(y)
        folds += [k] * len(ex)
    data = RelationalData(
        predicates=predicates,
        facts=facts,
        target=names["infected"],
        examples=tuple(examples),
        fold=np.asarray(folds),
        name=tag,
    )
    return data, np.concatenate(labels)


@register_dataset(
    "toy_relational",
    kind="relational",
    domains=("epidemic", "network"),
    description="generated epidemic and computer-network worlds with a planted predicate mapping",
)
def toy_relational(
    *,
    source: str = "epidemic",
    target: str = "network",
    n_entities: int = 40,
    n_folds: int = 3,
    degree: float = 3.0,
    test_fold: int = 0,
    seed: int = 0,
) -> TransferTask:
    """Two relational domains related by :data:`TOY_RELATIONAL_MAPPING`.

    The target predicate (``infected`` / ``compromised``) holds when an entity is linked to a
    carrier (malicious host) and is not vaccinated (patched), with 3 % label noise; a
    ``household`` (``subnet``) relation is a distractor. The source is every fold of the source
    world; the target training data are the target folds other than ``test_fold``, which is the
    test set.

    Parameters
    ----------
    source, target : {"epidemic", "network"}
        The two worlds (either direction).
    n_entities : int
        Entities per fold.
    n_folds : int
        Folds (separate worlds) per domain.
    degree : float
        Mean number of contacts per entity.
    test_fold : int
        The target fold held out for testing.
    seed : int
        Seed of the generator.

    Returns
    -------
    task : TransferTask
    """
    from .common import check_domains

    check_domains("toy_relational", source, target, ("epidemic", "network"))
    if n_folds < 2 or not 0 <= test_fold < n_folds:
        raise ConfigError(f"toy_relational needs n_folds >= 2 and 0 <= test_fold < {n_folds}")
    identity = {k: k for k in TOY_RELATIONAL_MAPPING}
    worlds = {
        "epidemic": (identity, 0),
        "network": (TOY_RELATIONAL_MAPPING, 1),
    }
    domains = {}
    for name in (source, target):
        names, offset = worlds[name]
        domains[name] = _relational_domain(
            n_entities, n_folds, degree, seed * 2 + offset, names, name
        )
    Xs, ys = domains[source]
    Xt, yt = domains[target]
    test = Xt.fold == test_fold
    target_domain = Domain(Xt, yt, name=target)
    return TransferTask(
        source=Domain(Xs, ys, name=source),
        target=target_domain.subset(np.flatnonzero(~test)),
        test=target_domain.subset(np.flatnonzero(test)),
        kind="relational",
        num_classes=2,
        protocol="inductive",
        info={"test_fold": test_fold, "planted_mapping": dict(TOY_RELATIONAL_MAPPING)},
    )
