"""``python -m tlbench.report DIR``: method x task tables from every ``result.json`` under DIR.

1. **Selection.** Runs that differ only in hyperparameters (same dataset, protocol, selection
   protocol, row label, task and seed) are alternatives: the one with the best
   ``selection_score`` is kept, as the run's selection protocol prescribes
   (:mod:`tlbench.selection`).
2. **Tables.** One table per (dataset, evaluation protocol, selection protocol), so two
   protocols never share a column; a table selected with ``oracle`` says so in its title.
   Cells are mean ± std over seeds (population std) and the count, in percent; an ``avg``
   column averages the per-task means of rows that have every task; the best mean of each
   column is bold. Where ``experiments/published.csv`` has the paper's number for a row, a
   ``published`` row and the difference follow it.
3. **Files.** Markdown on the terminal; ``report.csv`` (raw statistics), ``report.md``,
   ``report.tex`` and PNG plots (grouped bars with error bars per task; average rank of the
   rows) in the output folder (default: DIR).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TlbenchError
from .results import collect

PUBLISHED = Path(__file__).resolve().parents[1] / "experiments" / "published.csv"


class ReportError(TlbenchError, ValueError):
    """The records cannot be tabulated as asked."""


def task_label(rec: dict[str, Any]) -> str:
    """``source→target`` of a record (the dataset name when it has no domains)."""
    src, tgt = rec.get("source"), rec.get("target")
    return f"{src}→{tgt}" if src or tgt else str(rec.get("dataset"))


def _label(rec: dict[str, Any]) -> str:
    return str(rec.get("label") or rec.get("method"))


_NOT_TASK = {"_target_", "seed", "data_dir", "source", "target"}


def label_tasks(records: list[dict[str, Any]]) -> None:
    """Set each record's ``_task``: ``source→target``, plus the dataset options that vary.

    Two runs whose dataset configs differ (``shift=covariate`` vs ``translation``, another
    ``target_labeled``...) solve different tasks: they get different columns and are never
    alternatives for model selection.
    """
    options: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        cfg = rec.get("config", {}).get("dataset", {}) or {}
        options[str(rec.get("dataset"))].append(
            {k: v for k, v in cfg.items() if k not in _NOT_TASK}
        )
    varying = {
        name: sorted({k for o in opts for k in o if any(p.get(k) != o.get(k) for p in opts)})
        for name, opts in options.items()
    }
    for rec in records:
        cfg = rec.get("config", {}).get("dataset", {}) or {}
        keys = varying[str(rec.get("dataset"))]
        extra = ",".join(f"{k}={cfg.get(k)}" for k in keys)
        rec["_task"] = task_label(rec) + (f" [{extra}]" if extra else "")


def as_protocol(records: Iterable[dict[str, Any]], protocol: str | None) -> list[dict[str, Any]]:
    """The records as selected by ``protocol`` instead of their own protocol.

    ``None`` keeps each record's own ``selection``; a protocol name uses the score the record
    holds for it in ``selection_scores``; ``"all"`` gives one copy per protocol a record scored.
    """
    if protocol is None:
        return list(records)
    out = []
    for rec in records:
        scores = dict(rec.get("selection_scores") or {})
        if rec.get("selection") not in (None, "none"):
            scores.setdefault(rec["selection"], rec.get("selection_score"))
        names = sorted(scores) if protocol == "all" else [protocol]
        out += [{**rec, "selection": n, "selection_score": scores[n]} for n in names if n in scores]
    return out


def select(
    records: Iterable[dict[str, Any]], strict: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """Keep, per (dataset, protocol, selection, label, task, seed), the best-scored ``ok`` run.

    Returns
    -------
    chosen : list of dict
        One record per group.
    n_alternatives : int
        How many runs were set aside in favour of a better-scored one.

    Alternatives that lack a score are an error when ``strict``; otherwise (a protocol chosen
    after the fact, which may not score every method) the group is left out of that table.
    """
    records = [r for r in records if r.get("status") == "ok"]
    label_tasks(records)
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        key = (
            rec.get("dataset"),
            rec.get("protocol"),
            rec.get("selection", "none"),
            _label(rec),
            rec["_task"],
            rec.get("seed"),
        )
        groups[key].append(rec)
    chosen, dropped = [], 0
    for key, recs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        if len(recs) > 1:
            scored = [r for r in recs if r.get("selection_score") is not None]
            if len(scored) < len(recs) and not strict:
                dropped += len(recs)
                continue
            if len(scored) < len(recs):
                raise ReportError(
                    f"{len(recs)} runs of {key[3]!r} on {key[0]} {key[4]} seed {key[5]} "
                    f"differ in their configuration but not all have a selection score "
                    f"(selection {key[2]!r}); give them distinct labels (label=...) or score them"
                )
            recs = [max(scored, key=lambda r: r["selection_score"])]
            dropped += len(scored) - 1
        chosen.append(recs[0])
    return chosen, dropped


def summarize(records: Iterable[dict[str, Any]], metric: str = "accuracy") -> list[dict[str, Any]]:
    """Mean and std of ``metric`` over seeds per (dataset, protocol, selection, label, task)."""
    groups: dict[tuple, list[tuple[Any, float]]] = defaultdict(list)
    classifiers: dict[tuple, set[str]] = defaultdict(set)
    for rec in records:
        value = rec.get("metrics", {}).get(metric)
        if rec.get("status") == "ok" and value is not None:
            key = (
                str(rec["dataset"]),
                str(rec.get("protocol")),
                str(rec.get("selection", "none")),
                _label(rec),
                rec.get("_task") or task_label(rec),
            )
            groups[key].append((rec.get("seed"), float(value)))
            classifiers[key].add(str(rec.get("classifier") or "—"))
    rows = []
    for (dataset, protocol, selection, label, task), values in sorted(groups.items()):
        clf = classifiers[(dataset, protocol, selection, label, task)]
        vals = np.array([v for _, v in values])
        rows.append(
            {
                "dataset": dataset,
                "protocol": protocol,
                "selection": selection,
                "label": label,
                "task": task,
                "metric": metric,
                "mean": float(vals.mean()),
                "std": float(vals.std()),
                "n": len(vals),
                "seeds": sorted(s for s, _ in values if s is not None),
                "classifier": " / ".join(sorted(clf)),
            }
        )
    return rows


def load_published(path: str | Path | None) -> dict[tuple[str, str, str, str], tuple[float, str]]:
    """``(dataset, protocol, label, task) -> (value in %, source)`` from a published-numbers CSV."""
    if path is None or not Path(path).is_file():
        return {}
    table = {}
    with Path(path).open(encoding="utf-8") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            key = (row["dataset"], row["protocol"], row["label"], row["task"])
            table[key] = (float(row["value"]), row.get("source", ""))
    return table


@dataclass
class Table:
    """One rendered table: rows (labels) x columns (tasks) of cells."""

    title: str
    dataset: str
    protocol: str
    selection: str
    tasks: list[str]
    labels: list[str]
    cells: dict[tuple[str, str], dict[str, Any]]
    published: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    #: each row's final classifier, when the rows of the table differ in it (else empty)
    classifiers: dict[str, str] = field(default_factory=dict)

    def row_name(self, label: str) -> str:
        """The row's label, with its final classifier when the rows differ in it."""
        clf = self.classifiers.get(label)
        return f"{label} [{clf}]" if clf else label

    def avg(self, label: str) -> float | None:
        """Mean over tasks of the row's means, when the row has every task."""
        means = [self.cells[(label, t)]["mean"] for t in self.tasks if (label, t) in self.cells]
        return float(np.mean(means)) if len(means) == len(self.tasks) else None

    def best(self, task: str) -> float | None:
        """The best mean of a column."""
        means = [
            self.cells[(lab, task)]["mean"] for lab in self.labels if (lab, task) in self.cells
        ]
        return max(means) if means else None


def tables(rows: list[dict[str, Any]], published: dict | None = None) -> list[Table]:
    """Group summary rows into one :class:`Table` per (dataset, protocol, selection)."""
    published = published or {}
    out = []
    keys = sorted({(r["dataset"], r["protocol"], r["selection"]) for r in rows})
    for dataset, protocol, selection in keys:
        sub = [
            r
            for r in rows
            if (r["dataset"], r["protocol"], r["selection"]) == (dataset, protocol, selection)
        ]
        tasks = sorted({r["task"] for r in sub})
        labels = sorted({r["label"] for r in sub})
        oracle = " — ORACLE selection (target test labels)" if selection == "oracle" else ""
        title = (
            f"{dataset}, {protocol} protocol, selection {selection}{oracle} ({sub[0]['metric']}, %)"
        )
        pub = {
            (label, task): value
            for (d, p, label, task), value in published.items()
            if d == dataset and p == protocol and label in labels
        }
        cells = {(r["label"], r["task"]): r for r in sub}
        by_label = {lab: " / ".join(sorted({r.get("classifier") or "—" for r in sub
                                            if r["label"] == lab})) for lab in labels}  # fmt: skip
        differ = len(set(by_label.values())) > 1
        out.append(Table(title, dataset, protocol, selection, tasks, labels, cells, pub,
                         by_label if differ else {}))  # fmt: skip
    return out


def _fmt(r: dict[str, Any], scale: float, decimals: int) -> str:
    text = f"{scale * r['mean']:.{decimals}f}"
    if r["n"] > 1:
        text += f" ± {scale * r['std']:.{decimals}f} ({r['n']})"
    return text


def _signed(value: float, decimals: int) -> str:
    """``+1.2`` / ``-1.2``, and ``+0.0`` rather than ``-0.0``."""
    return f"{round(value, decimals) + 0.0:+.{decimals}f}"


def _grid(t: Table, scale: float, decimals: int, bold: tuple[str, str]) -> list[list[str]]:
    """Body rows of a table as text cells, the best mean of each column wrapped in ``bold``."""
    lines = []
    multi = len(t.tasks) > 1
    best_avg = max((a for a in map(t.avg, t.labels) if a is not None), default=None)
    for label in t.labels:
        cells = [t.row_name(label)]
        for task in t.tasks:
            r = t.cells.get((label, task))
            if r is None:
                cells.append("—")
                continue
            text = _fmt(r, scale, decimals)
            if len(t.labels) > 1 and np.isclose(r["mean"], t.best(task)):
                text = f"{bold[0]}{text}{bold[1]}"
            cells.append(text)
        if multi:
            avg = t.avg(label)
            text = "—" if avg is None else f"{scale * avg:.{decimals}f}"
            if avg is not None and len(t.labels) > 1 and np.isclose(avg, best_avg):
                text = f"{bold[0]}{text}{bold[1]}"
            cells.append(text)
        lines.append(cells)
        if any((label, task) in t.published for task in t.tasks):
            pub = [t.published.get((label, task)) for task in t.tasks]
            row = [f"{label} (published)"] + [
                "—" if p is None else f"{p[0]:.{decimals}f}" for p in pub
            ]
            diff = [f"{label} (ours − published)"]
            for task, p in zip(t.tasks, pub, strict=True):
                r = t.cells.get((label, task))
                diff.append(
                    "—" if p is None or r is None else _signed(scale * r["mean"] - p[0], decimals)
                )
            if multi:
                values = [p[0] for p in pub if p is not None]
                row.append(f"{np.mean(values):.{decimals}f}" if len(values) == len(pub) else "—")
                avg = t.avg(label)
                diff.append(
                    "—"
                    if avg is None or len(values) != len(pub)
                    else _signed(scale * avg - np.mean(values), decimals)
                )
            lines += [row, diff]
    return lines


def markdown(ts: list[Table], scale: float = 100.0, decimals: int = 1) -> str:
    """The tables as Markdown."""
    out = []
    for t in ts:
        header = ["method", *t.tasks] + (["avg"] if len(t.tasks) > 1 else [])
        lines = [f"### {t.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c) + " |" for c in _grid(t, scale, decimals, ("**", "**"))]
        sources = sorted({src for _, src in t.published.values() if src})
        if sources:
            lines += ["", "Published: " + "; ".join(sources)]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _tex(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
    ):
        text = text.replace(a, b)
    return text.replace("→", r"$\to$").replace("±", r"$\pm$").replace("−", "-")


def latex(ts: list[Table], scale: float = 100.0, decimals: int = 1) -> str:
    """The tables as LaTeX ``tabular`` environments (booktabs rules)."""
    out = []
    for t in ts:
        header = ["method", *t.tasks] + (["avg"] if len(t.tasks) > 1 else [])
        body = _grid(t, scale, decimals, ("\x00", "\x01"))
        lines = [
            f"% {t.title}",
            r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
            r"\toprule",
            " & ".join(_tex(h) for h in header) + r" \\",
            r"\midrule",
        ]
        for cells in body:
            row = [_tex(c).replace("\x00", r"\textbf{").replace("\x01", "}") for c in cells]
            lines.append(" & ".join(row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write the summary rows as CSV."""
    path = Path(path)
    fields = [
        "dataset",
        "protocol",
        "selection",
        "label",
        "task",
        "metric",
        "mean",
        "std",
        "n",
        "seeds",
        "classifier",
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {**{k: r.get(k) for k in fields}, "seeds": " ".join(map(str, r["seeds"]))}
            )
    return path


def average_ranks(t: Table) -> dict[str, float]:
    """Mean rank (1 = best) of each row over the tasks every row has."""
    tasks = [task for task in t.tasks if all((lab, task) in t.cells for lab in t.labels)]
    if not tasks:
        return {}
    from scipy.stats import rankdata

    ranks = np.array(
        [rankdata([-t.cells[(lab, task)]["mean"] for lab in t.labels]) for task in tasks]
    )
    return dict(zip(t.labels, ranks.mean(axis=0).tolist(), strict=True))


def plot(t: Table, out_dir: Path, scale: float = 100.0) -> list[Path]:
    """Grouped bars with error bars per task and, for several tasks, the average rank chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = f"{t.dataset}_{t.protocol}_{t.selection}"
    paths = []
    width = 0.8 / len(t.labels)
    fig, ax = plt.subplots(figsize=(min(16.0, 2.5 + 0.35 * len(t.tasks) * (len(t.labels) + 1)), 4))
    x = np.arange(len(t.tasks))
    shown = False  # one legend entry for all published markers
    for i, label in enumerate(t.labels):
        cells = [t.cells.get((label, task)) for task in t.tasks]
        means = [scale * c["mean"] if c else np.nan for c in cells]
        stds = [scale * c["std"] if c else 0.0 for c in cells]
        offset = (i - (len(t.labels) - 1) / 2) * width
        ax.bar(x + offset, means, width, yerr=stds, capsize=2, label=label)
        pub = [t.published.get((label, task), (np.nan,))[0] for task in t.tasks]
        if not np.all(np.isnan(pub)):
            ax.scatter(
                x + offset,
                pub,
                marker="_",
                s=300 * width,
                color="black",
                zorder=3,
                label=None if shown else "published",
            )
            shown = True
    slanted = len(t.tasks) > 3 or max(len(task) for task in t.tasks) > 16
    ax.set_xticks(x, t.tasks, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_ylabel(f"{next(iter(t.cells.values()))['metric']} (%)")
    ax.set_title(t.title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    paths.append(out_dir / f"report_{stem}.png")
    fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)
    ranks = average_ranks(t)
    if len(ranks) > 1 and len(t.tasks) > 1:
        order = sorted(ranks, key=ranks.get)
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(order) + 1.2))
        ax.barh(order[::-1], [ranks[k] for k in order[::-1]], color="tab:blue")
        ax.set_xlabel("average rank over tasks (1 = best)")
        ax.set_xlim(1 - 0.05, len(order) + 0.05)
        ax.set_title(f"{t.dataset}: average rank ({t.selection} selection)", fontsize=9)
        paths.append(out_dir / f"rank_{stem}.png")
        fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
        plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Print the tables of the records under a folder and write the files; return the status."""
    parser = argparse.ArgumentParser(
        prog="python -m tlbench.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", help="folder to search for result.json files (recursively)")
    parser.add_argument("--metric", default="accuracy", help="metric to tabulate")
    parser.add_argument(
        "--out", default=None, help="folder for report.{csv,md,tex} and plots (default DIR)"
    )
    parser.add_argument("--decimals", type=int, default=1, help="decimals of the percentages")
    parser.add_argument("--published", default=str(PUBLISHED), help="published numbers CSV")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--selection",
        default=None,
        help="select with this protocol's recorded scores (or 'all': every protocol side by "
        "side) instead of each run's own protocol",
    )
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if not root.is_dir():
        print(f"tlbench.report: error: {root} is not a folder", file=sys.stderr)
        return 2
    problems: list[str] = []
    records = collect(root, problems)
    for line in problems:
        print(f"tlbench.report: skipped {line}", file=sys.stderr)
    if not records:
        print(f"tlbench.report: error: no result.json records under {root}", file=sys.stderr)
        return 2
    versions = sorted({str(r.get("versions", {}).get("tlbench")) for r in records})
    if len(versions) > 1:
        print(
            f"tlbench.report: note: records from tlbench versions {', '.join(versions)}",
            file=sys.stderr,
        )
    try:
        chosen, dropped = select(
            as_protocol(records, args.selection), strict=args.selection is None
        )
    except ReportError as exc:
        print(f"tlbench.report: error: {exc}", file=sys.stderr)
        return 2
    rows = summarize(chosen, args.metric)
    if not rows:
        print(f"tlbench.report: error: no successful run reports {args.metric!r}", file=sys.stderr)
        return 2
    ts = tables(rows, load_published(args.published))
    text = markdown(ts, decimals=args.decimals)
    print(text)
    if dropped:
        print(
            f"\n{dropped} run(s) set aside by model selection (a better-scored configuration "
            "won, or the protocol could not score the alternatives)."
        )
    other = [r for r in records if r.get("status") != "ok"]
    if other:
        print(f"\n{len(other)} run(s) without a result:")
        for r in other:
            print(
                f"- {r['method']} on {r['dataset']} {task_label(r)} seed {r.get('seed')}: "
                f"{r.get('status')} ({r.get('reason')})"
            )
    out = Path(args.out) if args.out else root
    out.mkdir(parents=True, exist_ok=True)
    written = [write_csv(rows, out / "report.csv")]
    (out / "report.md").write_text(text + "\n", encoding="utf-8")
    (out / "report.tex").write_text(latex(ts, decimals=args.decimals), encoding="utf-8")
    written += [out / "report.md", out / "report.tex"]
    if not args.no_plots:
        for t in ts:
            written += plot(t, out)
    print("\nwritten: " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
