"""tlbench's RDN-Boost against BoostSRL's jar (and relational_scratch) on one BoostSRL split.

    OMP_NUM_THREADS=1 TLBENCH_DATA_DIR=../shared/data \\
        python experiments/benchmarks/rdn_boost_vs_boostsrl.py [--domain nell_sports] \\
        [--trees 10] [--jar BoostSRL.jar]

Data: a BoostSRL-format zip of ``relational_boostsrl/`` with genuinely held-out examples:
``nell_sports`` (``NELL.zip``: ``train/`` 210 positives / 420 negatives, ``test/`` 90 / 180,
one shared world of facts). tlbench reads it with
:func:`~tlbench.datasets.relational.load_boostsrl` (fold 0 = ``train/``, fold 1 = ``test/``);
BoostSRL reads the same files, unzipped unchanged.

Methods, all learned on ``train/`` and scored on ``test/``:

- ``rdn_boost``: :class:`~tlbench.methods.relational.rdn_boost.RDNBoost` with its defaults and
  the zip's own ``mode:`` lines;
- ``relational_scratch``: the weighted-clause learner with its defaults;
- ``BoostSRL jar``: ``java -jar BoostSRL.jar -l -train ... -trees N`` (its defaults otherwise:
  ``-negPosRatio 2``, its ``maxTreeDepth``/``nodeSize`` defaults and the file's modes), then
  ``-i -test ... -testNegPosRatio -1`` so every test atom is scored.

AUC-ROC and AUC-PR of all rows are computed by ``relational_metrics`` (tlbench's) from each
method's probability of every test atom (BoostSRL's ``results_<target>.db``; the
AUC that BoostSRL's own ``auc.jar`` prints is shown below the table). "fit s" is wall-clock
learning time (for the jar: the whole ``java -l`` process, JVM start included; BoostSRL's own
"Total learning time" is printed too); "x rdn_boost" is fit time relative to ``rdn_boost``.

The jar comes from the srlearn wheel (``pip download srlearn==0.5.5 --no-deps``, into a
temporary folder; srlearn itself is not imported: 0.5.5 does not work with current
scikit-learn / numpy) or from ``--jar``. Without java or the jar the script says so and exits 2.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from tlbench.datasets.relational import BOOSTSRL_DOMAINS, BOOSTSRL_FOLDER, fold_task, load_boostsrl
from tlbench.methods.relational import relational_metrics
from tlbench.methods.relational.learner import RelationalScratch
from tlbench.methods.relational.rdn_boost import RDNBoost

RESULT = re.compile(r"^(!?)([A-Za-z]\w*)\((.*)\)\s+([-+0-9.eE]+)\s*$")


def fail(message: str) -> None:
    print(f"rdn_boost_vs_boostsrl: {message}", file=sys.stderr)
    sys.exit(2)


def find_jar(given: str | None, workdir: Path) -> Path:
    """BoostSRL.jar: ``--jar``, ``$BOOSTSRL_JAR``, or the srlearn wheel downloaded by pip."""
    for candidate in (given, os.environ.get("BOOSTSRL_JAR")):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                fail(f"no BoostSRL jar at {path}")
            return path
    wheels = workdir / "wheel"
    cmd = [sys.executable, "-m", "pip", "download", "srlearn==0.5.5", "--no-deps", "-q"]
    got = subprocess.run([*cmd, "-d", str(wheels)], capture_output=True, text=True)
    found = sorted(wheels.glob("srlearn-*.whl")) if wheels.is_dir() else []
    if got.returncode != 0 or not found:
        fail(
            "could not get BoostSRL.jar: `pip download srlearn==0.5.5` failed "
            f"({got.stderr.strip().splitlines()[-1] if got.stderr.strip() else 'no wheel'}); "
            "pass --jar PATH"
        )
    with zipfile.ZipFile(found[0]) as zf:
        for name in ("srlearn/BoostSRL.jar", "srlearn/auc.jar"):
            target = workdir / Path(name).name
            target.write_bytes(zf.read(name))
    return workdir / "BoostSRL.jar"


def check_java() -> str:
    try:
        got = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        fail(f"java is not available ({exc}); BoostSRL needs a Java runtime")
    if got.returncode != 0:
        fail(f"`java -version` failed: {got.stderr.strip()}")
    return (got.stderr or got.stdout).strip().splitlines()[0]


def unzip_split(zip_path: Path, workdir: Path) -> tuple[Path, Path]:
    """Unzip the BoostSRL files; return the train and test folders."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(workdir / "data")
    trains = sorted((workdir / "data").glob("*/train"))
    tests = sorted((workdir / "data").glob("*/test"))
    if len(trains) != 1 or len(tests) != 1:
        fail(f"{zip_path.name}: expected one <name>/train and one <name>/test folder")
    return trains[0], tests[0]


def run_boostsrl(jar: Path, train: Path, test: Path, target: str, trees: int, timeout: int):
    """Learn and infer with the jar; return fit seconds, its own numbers and test probabilities."""
    java = ["java", "-jar", str(jar)]
    start = time.perf_counter()
    learn = subprocess.run(
        [*java, "-l", "-train", f"{train}/", "-target", target, "-trees", str(trees)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=jar.parent,
    )
    fit_s = time.perf_counter() - start
    if learn.returncode != 0:
        fail(f"BoostSRL learning failed (rc {learn.returncode}): {learn.stderr[-500:]}")
    own = re.search(r"Total learning time \(\d+ trees\): ([0-9.]+) seconds", learn.stdout)
    auc = ["-aucJarPath", str(jar.parent)] if (jar.parent / "auc.jar").is_file() else []
    infer = subprocess.run(
        [*java, "-i", "-test", f"{test}/", "-model", f"{train}/models", "-target", target,
         "-trees", str(trees), "-testNegPosRatio", "-1", *auc],
        capture_output=True, text=True, timeout=timeout, cwd=jar.parent,
    )  # fmt: skip
    if infer.returncode != 0:
        fail(f"BoostSRL inference failed (rc {infer.returncode}): {infer.stderr[-500:]}")
    probs: dict[tuple[str, ...], float] = {}
    for line in (test / f"results_{target}.db").read_text().splitlines():
        m = RESULT.match(line.strip())
        if m is None:
            continue
        args = tuple(a.strip().strip('"') for a in m.group(3).split(","))
        value = float(m.group(4))
        probs[args] = 1.0 - value if m.group(1) else value  # "!atom p": p of being false
    reported = {k: float(v) for k, v in re.findall(r"AUC (ROC|PR)\s*=\s*([0-9.]+)", infer.stdout)}
    return fit_s, (float(own.group(1)) if own else float("nan")), reported, probs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default="nell_sports", choices=["nell_sports"])
    ap.add_argument("--trees", type=int, default=10)
    ap.add_argument("--jar", help="path to BoostSRL.jar (default: from the srlearn wheel)")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per java call")
    args = ap.parse_args()

    data_dir = Path(os.environ.get("TLBENCH_DATA_DIR", "data"))
    zip_path = data_dir / BOOSTSRL_FOLDER / BOOSTSRL_DOMAINS[args.domain][0]
    if not zip_path.is_file():
        fail(f"no {zip_path} (set TLBENCH_DATA_DIR)")
    java_version = check_java()
    workdir = Path(tempfile.mkdtemp(prefix="rdn_vs_boostsrl-"))
    try:
        jar = find_jar(args.jar, workdir)
        if jar.parent != workdir:  # BoostSRL looks for auc.jar beside itself: copy both
            shutil.copy(jar, workdir / "BoostSRL.jar")
            if (jar.parent / "auc.jar").is_file():
                shutil.copy(jar.parent / "auc.jar", workdir / "auc.jar")
            jar = workdir / "BoostSRL.jar"

        X, y, info = load_boostsrl(data_dir, args.domain)
        if info["n_folds"] != 2:
            fail(f"{args.domain}: expected the train/test split as two folds")
        task = fold_task(X, y, info, X, y, info, test_fold=1, n_train_folds=None)
        test = task.test
        rows = []
        for label, method in [
            ("rdn_boost (tlbench)", RDNBoost(n_trees=args.trees, modes=str(zip_path))),
            ("relational_scratch (tlbench)", RelationalScratch()),
        ]:
            start = time.perf_counter()
            method.fit(task.without_test())
            fit_s = time.perf_counter() - start
            p = method.predict_proba(test.X)[:, 1]
            rows.append((label, relational_metrics(test.y, p), fit_s))

        train_dir, test_dir = unzip_split(zip_path, workdir)
        fit_s, own_s, reported, probs = run_boostsrl(
            jar, train_dir, test_dir, X.target, args.trees, args.timeout
        )
        missing = [ex for ex in test.X.examples if ex not in probs]
        if missing:
            fail(f"BoostSRL scored {len(probs)} atoms; {len(missing)} test atoms are missing")
        p = np.array([probs[ex] for ex in test.X.examples])
        rows.append(("BoostSRL jar (RDN-Boost)", relational_metrics(test.y, p), fit_s))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    ours = rows[0][2]
    n_train = len(task.target)
    print(
        f"{args.domain} ({X.target}): train {n_train} atoms ({int(task.target.y.sum())} pos), "
        f"test {len(test)} ({int(test.y.sum())} pos); {args.trees} trees; {java_version}"
    )
    print()
    print("| method | AUC-ROC | AUC-PR | fit s | x rdn_boost |")
    print("|---|---:|---:|---:|---:|")
    for label, m, s in rows:
        print(f"| {label} | {m['auc_roc']:.3f} | {m['auc_pr']:.3f} | {s:.2f} | {s / ours:.1f} |")
    print()
    print(
        f"BoostSRL's own report: learning {own_s:.2f} s (JVM start excluded), auc.jar "
        f"AUC-ROC {reported.get('ROC', float('nan')):.3f} / AUC-PR "
        f"{reported.get('PR', float('nan')):.3f} (interpolated PR)"
    )


if __name__ == "__main__":
    main()
