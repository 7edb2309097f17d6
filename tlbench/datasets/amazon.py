"""Amazon reviews (Blitzer et al.), DANN's 5000-dim bag-of-words files: sentiment across products.

Four domains (books, dvd, electronics, kitchen), 12 tasks, positive vs negative reviews. The
files are those of Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016
(repository GRAAL-Research/domain_adversarial_neural_network, ``data/``), read from
``<data_dir>/amazon_reviews_dann5000/{domain}_{train,test}.svmlight.gz`` (see the ``SOURCE.md``
there). The features stay a sparse CSR matrix unless a preprocessing needs dense arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, DataError
from ..registry import register_dataset
from ..task import TransferTask
from .common import PREPROCESSORS, PROTOCOLS, check_domains, data_file, make_task

FOLDER = "amazon_reviews_dann5000"
DOMAINS = ("books", "dvd", "electronics", "kitchen")
N_FEATURES = 5000
NUM_CLASSES = 2


def load_svmlight_domain(path: Path) -> tuple[sp.csr_matrix, np.ndarray]:
    """Read one DANN svmlight file as ``(X, y)``: CSR counts ``(n, 5000)``, labels 0/1.

    Parameters
    ----------
    path : Path
        The file (from :func:`~tlbench.datasets.common.data_file`); ``.gz`` is read directly.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n, 5000)
        Word counts (float64).
    y : ndarray of int64
        0 for a negative review (-1 in the file), 1 for a positive one (+1).
    """
    from sklearn.datasets import load_svmlight_file

    try:
        # zero_based=True: the files index features 0..4999; scikit-learn's "auto" would shift
        # every index by one for a file that happens to lack feature 0
        X, y = load_svmlight_file(str(path), n_features=N_FEATURES, zero_based=True)
    except Exception as exc:  # gzip, parse and width errors come as several types
        raise DataError(
            f"cannot read {path} as an svmlight file of {N_FEATURES} zero-based features "
            f"with labels -1/+1: {exc}"
        ) from None
    if X.shape[0] == 0:
        raise DataError(f"{path} holds no reviews")
    bad = sorted(set(np.unique(y).tolist()) - {-1.0, 1.0})
    if bad:
        raise DataError(f"{path}: labels must be -1 or +1, found {bad[:5]}")
    return sp.csr_matrix(X), ((y + 1) // 2).astype(np.int64)


@register_dataset(
    "amazon_reviews",
    kind="tabular",
    multi_source=True,
    domains=DOMAINS,
    description="Amazon reviews sentiment, 4 product domains, DANN's 5000-dim sparse word counts",
    paper="Ganin et al., Domain-Adversarial Training of Neural Networks, JMLR 2016",
)
def amazon_reviews(
    *,
    source: str | list[str] = "books",
    target: str = "dvd",
    data_dir: str | Path = "data",
    preprocess: str = "none",
    protocol: str = "inductive",
    target_labeled: int | float | str | None = 0,
    seed: int = 0,
) -> TransferTask:
    """Amazon product reviews: 2000 labeled ``*_train`` reviews per domain plus ``*_test`` sets.

    Sizes (negative / positive): train 2000 (1000 / 1000) in every domain; test books 4465
    (2201 / 2264), dvd 3586 (1779 / 1807), electronics 5681 (2824 / 2857), kitchen 5945
    (2991 / 2954). The data repeat some reviews: a train file holds 1954 (dvd) to 1977 (kitchen)
    distinct vectors, and 85 (electronics) to 152 (books) of a domain's distinct test vectors
    also occur in its train file, which matters when target training labels are used.

    Parameters
    ----------
    source, target : {"books", "dvd", "electronics", "kitchen"}
        Two distinct domains (any of the 12 ordered pairs). ``source`` may list several
        domains (e.g. ``[books,dvd,electronics]`` -> kitchen): a multi-source task whose
        source pools their ``*_train`` files (see :mod:`tlbench.task`).
    data_dir : str or Path
        The folder that holds ``amazon_reviews_dann5000/``.
    preprocess : str, default="none"
        Applied per domain (see :data:`~tlbench.datasets.common.PREPROCESSORS`). ``none`` (the
        default) keeps the raw word counts, as DANN's code does (its ``experiments_amazon.py``
        only densifies the matrices and maps the labels to 0/1; Ganin et al.'s Table 1 uses
        these raw features). ``l1``, ``l2`` and ``binary`` keep the matrices sparse; ``zscore``
        and ``l1_zscore`` make them dense (about 240 MB for the largest test set).
    protocol : {"inductive", "transductive"}, default="inductive"
        ``inductive`` is DANN's protocol: the source is the source's ``*_train`` file (labeled),
        the target is the target's ``*_train`` file (unlabeled) and the scores come from the
        target's ``*_test`` file, which ``fit`` never sees; the split is the files', so there
        is no ``test_size``. ``transductive``: the target's ``*_test`` file is given unlabeled
        to ``fit`` and scored; the target's ``*_train`` file is not used.
    target_labeled : int, float, "all" or None
        Target training samples that keep their labels (see :mod:`tlbench.datasets.common`).
    seed : int
        Seeds the choice of labeled target samples.

    Returns
    -------
    task : TransferTask

    References
    ----------
    Y. Ganin, E. Ustinova, H. Ajakan, P. Germain, H. Larochelle, F. Laviolette, M. Marchand,
    V. Lempitsky. Domain-Adversarial Training of Neural Networks. JMLR 17(59), 2016.
    J. Blitzer, M. Dredze, F. Pereira. Biographies, Bollywood, Boom-boxes and Blenders: Domain
    Adaptation for Sentiment Classification. ACL 2007.
    """
    sources = check_domains("amazon_reviews", source, target, DOMAINS)
    # checked before reading: the protocol decides which files are read
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"unknown dataset.protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        )
    if preprocess not in PREPROCESSORS:
        raise ConfigError(
            f"unknown dataset.preprocess {preprocess!r}; choose one of {', '.join(PREPROCESSORS)}"
        )

    def read(domain: str, part: str) -> tuple[sp.csr_matrix, np.ndarray, str]:
        X, y = load_svmlight_domain(data_file(data_dir, FOLDER, f"{domain}_{part}.svmlight.gz"))
        return X, y, domain

    src = [read(s, "train") for s in sources]
    files = [f"{s}_train" for s in sources]
    if protocol == "inductive":
        tgt, (X_test, y_test, _) = read(target, "train"), read(target, "test")
        test, files = (X_test, y_test), [*files, f"{target}_train", f"{target}_test"]
    else:
        tgt, test, files = read(target, "test"), None, [*files, f"{target}_test"]
    return make_task(
        source=src,
        target=tgt,
        num_classes=NUM_CLASSES,
        preprocess_name=preprocess,
        protocol=protocol,
        target_labeled=target_labeled,
        seed=seed,
        test=test,
        info={"files": [f"{FOLDER}/{f}.svmlight.gz" for f in files]},
    )
