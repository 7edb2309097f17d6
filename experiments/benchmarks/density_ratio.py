"""Density-ratio estimators: tlbench's KLIEP and uLSIF against skada's KLIEP, same data, one run.

    OMP_NUM_THREADS=1 TLBENCH_DATA_DIR=/work/shared/data \\
        python experiments/benchmarks/density_ratio.py [--repeats 1] [--no-gradient]

Tasks:

- Office-Caltech10 SURF, caltech -> amazon (1123 source, 958 target images, 800 features), read
  through the dataset registry, twice: with ``l1_zscore``, the published tables' preprocessing
  (each domain z-scored on its own), and with the raw visual-word counts (``preprocess=none``).
  Per-domain z-scoring centres both domains, so the logistic classifier's gradient vanishes at
  coefficients 0, its optimum: its ratio is a constant there, and the kernel estimators' LCV /
  LOOCV choose the widest width (also nearly constant weights); the raw counts keep the shift;
- synthetic: 2000 source samples N(0, I_10) and 2000 target samples N(0.5, 0.8^2 I_10).

Rows (every one from the samples to the weights, cross-validation included; the best of
``--repeats`` runs, wall-clock, one BLAS thread for everyone):

- ``tlbench kliep``: :class:`~tlbench.density_ratio.KLIEPRatio`, 100 centres, LCV (5 folds) over
  9 widths, SQP solver (certified gap <= 1e-6);
- ``tlbench kliep (gradient)``: the same with ``solver="gradient"`` (the paper's projected
  gradient ascent, exact projection, adaptive step);
- ``skada KLIEP``: ``skada.KLIEPReweightAdapter`` (0.6.0), 100 centres, ``cv=5`` over the same 9
  widths (``gamma = 1 / (2 sigma^2)``), its defaults ``tol=1e-6``, ``max_iter=1000``;
- ``skada KLIEP (our sigma)``: skada at the width tlbench's LCV chose, so the two solvers'
  objectives compare on one problem;
- ``tlbench ulsif``: :class:`~tlbench.density_ratio.ULSIFRatio`, analytic LOOCV over 9 x 9
  (sigma, lambda); skada has no uLSIF;
- ``tlbench logistic``: the selection protocols' logistic domain classifier, for scale.

Columns: ``seconds``; ``vs ours``, the time over tlbench's row of the same estimator family;
``objective``, each family's own criterion on all samples: KLIEP ``mean_t log w`` after
rescaling to ``mean_s w = 1`` (higher is better; only rows at the same sigma compare),
uLSIF ``J = 1/2 mean_s w^2 - mean_t w`` (lower is better), for logistic the KLIEP criterion;
``ESS`` of the source weights, ``(sum w)^2 / sum w^2``; and the chosen sigma.

skada 0.6.0's KLIEP takes gradient steps of ``EPS = np.finfo(float).eps`` times the gradient, so
its iterations amount to the paper's approximate projection (hyperplane shift, clip, rescale) of
the starting point ``alpha = 1``, and it stops when the objective changes by less than ``tol``:
at our sigma its objective is far below the optimum on data with a real shift. (It also draws
its centres with replacement: 97 distinct of 100 on the synthetic task.)
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from tlbench.density_ratio import SIGMA_GRID, KLIEPRatio, LogisticRatio, ULSIFRatio


def office_caltech(data_dir: str, preprocess: str) -> tuple[np.ndarray, np.ndarray]:
    from tlbench.registry import DATASETS

    task = DATASETS.get("office_caltech_surf")(
        source="caltech", target="amazon", data_dir=data_dir, preprocess=preprocess
    )
    return np.asarray(task.source.X, dtype=float), np.asarray(task.target.X, dtype=float)


def synthetic(n: int = 2000, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (n, d)), rng.normal(0.5, 0.8, (n, d))


def kliep_objective(w_source: np.ndarray, w_target: np.ndarray) -> float:
    """``mean_t log w - log mean_s w``: KLIEP's objective of ``w`` rescaled to mean_s w = 1."""
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(w_target)) - math.log(np.mean(w_source)))


def ulsif_objective(w_source: np.ndarray, w_target: np.ndarray) -> float:
    """uLSIF's squared loss ``J = 1/2 mean_s w^2 - mean_t w``."""
    return float(0.5 * np.mean(w_source**2) - np.mean(w_target))


def ess(w: np.ndarray) -> float:
    return float(w.sum() ** 2 / max(float(np.sum(w**2)), 1e-300))


def timed(fit: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fit()
        best = min(best, time.perf_counter() - start)
    return best, out


def skada_kliep(Xs: np.ndarray, Xt: np.ndarray, gamma: float | list[float]) -> Callable:
    """skada's KLIEP fitted on the stacked samples; returns ``x -> w(x)``."""
    from skada import KLIEPReweightAdapter
    from sklearn.metrics.pairwise import pairwise_kernels

    X = np.vstack([Xs, Xt])
    domain = np.r_[np.ones(len(Xs), dtype=int), -np.ones(len(Xt), dtype=int)]
    # a list (not a tuple): skada cross-validates only when gamma is a list
    gamma = list(gamma) if isinstance(gamma, list) else float(gamma)
    ad = KLIEPReweightAdapter(gamma=gamma, cv=5, n_centers=100, random_state=0)
    ad.fit(X, sample_domain=domain)

    def ratio(Z: np.ndarray) -> np.ndarray:
        return pairwise_kernels(Z, ad.centers_, metric="rbf", gamma=ad.best_gamma_) @ ad.alpha_

    ratio.sigma = math.sqrt(1.0 / (2.0 * ad.best_gamma_))
    return ratio


def run_task(name: str, Xs: np.ndarray, Xt: np.ndarray, args: argparse.Namespace) -> None:
    print(f"\n### {name}: n_source={len(Xs)}, n_target={len(Xt)}, d={Xs.shape[1]}\n")
    print("| method | seconds | vs ours | objective | ESS | sigma |")
    print("|---|---|---|---|---|---|")
    rows: list[tuple[str, str, float, Callable, float | None]] = []

    t, kl = timed(lambda: KLIEPRatio(random_state=0).fit(Xs, Xt), args.repeats)
    rows.append(("tlbench kliep (sqp)", "kliep", t, kl, kl.sigma_))
    ours = {"kliep": t}
    if args.gradient:
        t, kg = timed(lambda: KLIEPRatio(solver="gradient", random_state=0).fit(Xs, Xt), 1)
        note = "" if kg.converged_ else f", gap {kg.gap_:.1e}"
        rows.append((f"tlbench kliep (gradient{note})", "kliep", t, kg, kg.sigma_))
    if args.skada:
        # the same candidate widths: sigma = multiple x median distance, gamma = 1 / (2 sigma^2)
        gammas = [1.0 / (2.0 * (g * kl.median_distance_) ** 2) for g in SIGMA_GRID]
        t, sk = timed(lambda: skada_kliep(Xs, Xt, gammas), args.repeats)
        rows.append(("skada KLIEP (LCV)", "kliep", t, sk, sk.sigma))
        t, sk1 = timed(lambda: skada_kliep(Xs, Xt, 1.0 / (2.0 * kl.sigma_**2)), args.repeats)
        rows.append(("skada KLIEP (our sigma, no CV)", "kliep", t, sk1, sk1.sigma))
        t, kl1 = timed(lambda: KLIEPRatio(sigma=kl.sigma_, random_state=0).fit(Xs, Xt), 1)
        rows.append(("tlbench kliep (our sigma, no CV)", "kliep1", t, kl1, kl1.sigma_))
        ours["kliep1"] = t
    t, ul = timed(lambda: ULSIFRatio(random_state=0).fit(Xs, Xt), args.repeats)
    rows.append(("tlbench ulsif", "ulsif", t, ul, ul.sigma_))
    ours["ulsif"] = t
    t, lo = timed(lambda: LogisticRatio(random_state=0).fit(Xs, Xt), args.repeats)
    rows.append(("tlbench logistic", "logistic", t, lo, None))
    ours["logistic"] = t

    for label, family, seconds, ratio, sigma in rows:
        w_s, w_t = ratio(Xs), ratio(Xt)
        if family == "ulsif":
            obj = f"J = {ulsif_objective(w_s, w_t):.5f}"
        else:
            obj = f"{kliep_objective(w_s, w_t):.6f}"
        ref = ours.get("kliep1" if "no CV" in label else family)
        if label.startswith("skada KLIEP (LCV)"):
            ref = ours["kliep"]
        vs = f"{seconds / ref:.2f}x" if ref else "-"
        sig = f"{sigma:.3g}" if sigma is not None else "-"
        print(f"| {label} | {seconds:.3f} | {vs} | {obj} | {ess(w_s):.1f} | {sig} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-gradient", dest="gradient", action="store_false")
    parser.add_argument("--data-dir", default=os.environ.get("TLBENCH_DATA_DIR", "data"))
    args = parser.parse_args()
    try:
        import skada

        args.skada = True
        print(f"skada {skada.__version__}")
    except ImportError:
        args.skada = False
        print("skada is not installed: its rows are skipped")
    with threadpool_limits(limits=1, user_api="blas"):
        for pre in ("l1_zscore", "none"):
            data = office_caltech(args.data_dir, pre)
            run_task(f"Office-Caltech10 SURF caltech -> amazon, preprocess={pre}", *data, args)
        run_task("synthetic N(0, I_10) -> N(0.5, 0.8^2 I_10)", *synthetic(), args)


if __name__ == "__main__":
    main()
