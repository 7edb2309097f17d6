"""Build dataset layouts from original downloads: ``python -m tlbench.prepare <dataset> ...``.

``catsdogs --kaggle DIR OUT``: from Kaggle's Dogs vs. Cats ``train/`` folder (``cat.N.jpg``,
``dog.N.jpg``) make the Keras lecture's layout ``OUT/train/{cats,dogs}`` (ids in numeric order,
1000 per class) and ``OUT/validation/{cats,dogs}`` (the next 400 per class). Every candidate file
is decoded first; unreadable or truncated ones are skipped, counted and named in the log, and the
next id takes their place so the sizes stay the lecture's. Files are copied (``--link``: hard
links), nothing is downloaded.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
from pathlib import Path

from .datasets.images import decode_image
from .errors import DataError, TlbenchError

log = logging.getLogger("tlbench.prepare")

_KAGGLE_NAME = re.compile(r"^(cat|dog)\.(\d+)\.(jpe?g|png)$", re.IGNORECASE)


def prepare_catsdogs(
    kaggle_dir: str | Path,
    out_dir: str | Path,
    *,
    train_per_class: int = 1000,
    val_per_class: int = 400,
    link: bool = False,
) -> dict[str, object]:
    """Copy the lecture's split of Kaggle's Dogs vs. Cats into ``out_dir``.

    Parameters
    ----------
    kaggle_dir : str or Path
        Kaggle's ``train/`` folder (25,000 files ``cat.N.jpg`` / ``dog.N.jpg``).
    out_dir : str or Path
        Where ``train/{cats,dogs}`` and ``validation/{cats,dogs}`` are made.
    train_per_class, val_per_class : int, default=1000, 400
        Images per class in each split.
    link : bool, default=False
        Hard-link instead of copying.

    Returns
    -------
    summary : dict
        ``counts`` per split and class, and ``skipped``: the unreadable files.

    Raises
    ------
    DataError
        The folder has too few readable images of a class, or ``out_dir`` already holds a split.
    """
    src, out = Path(kaggle_dir).expanduser(), Path(out_dir).expanduser()
    if not src.is_dir():
        raise DataError(f"Kaggle folder {src} not found (it holds cat.N.jpg and dog.N.jpg)")
    for split in ("train", "validation"):
        if (out / split).exists() and any((out / split).iterdir()):
            raise DataError(f"{out / split} already exists and is not empty; choose a new OUT")
    by_class: dict[str, list[tuple[int, Path]]] = {"cat": [], "dog": []}
    for f in src.iterdir():
        m = _KAGGLE_NAME.match(f.name)
        if m and f.is_file():
            by_class[m.group(1).lower()].append((int(m.group(2)), f))
    skipped: list[str] = []
    counts: dict[str, dict[str, int]] = {"train": {}, "validation": {}}
    need = train_per_class + val_per_class
    for animal, files in by_class.items():
        chosen: list[Path] = []
        for _, f in sorted(files):
            if len(chosen) == need:
                break
            try:
                decode_image(f)
            except DataError as exc:
                skipped.append(f.name)
                log.warning("skipped unreadable %s (%s)", f.name, exc.__cause__ or exc)
                continue
            chosen.append(f)
        if len(chosen) < need:
            raise DataError(
                f"{src} holds {len(chosen)} readable {animal} images; {need} are needed "
                f"({train_per_class} train + {val_per_class} validation)"
            )
        parts = {"train": chosen[:train_per_class], "validation": chosen[train_per_class:]}
        for split, part in parts.items():
            dest = out / split / f"{animal}s"
            dest.mkdir(parents=True, exist_ok=True)
            for f in part:
                (os.link if link else shutil.copy2)(f, dest / f.name)
            counts[split][f"{animal}s"] = len(part)
    log.info("wrote %s: %s; skipped %d unreadable file(s)%s", out, counts, len(skipped),
             f": {', '.join(skipped)}" if skipped else "")  # fmt: skip
    return {"counts": counts, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m tlbench.prepare", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="dataset", required=True)
    cd = sub.add_parser(
        "catsdogs", help="Kaggle Dogs vs. Cats -> the lecture's train/validation layout"
    )
    cd.add_argument("--kaggle", required=True, help="Kaggle's train/ folder (cat.N.jpg, dog.N.jpg)")
    cd.add_argument("out", help="output folder (gets train/ and validation/)")
    cd.add_argument("--train-per-class", type=int, default=1000)
    cd.add_argument("--val-per-class", type=int, default=400)
    cd.add_argument("--link", action="store_true", help="hard-link instead of copying")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        prepare_catsdogs(args.kaggle, args.out, train_per_class=args.train_per_class,
                         val_per_class=args.val_per_class, link=args.link)  # fmt: skip
    except TlbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
