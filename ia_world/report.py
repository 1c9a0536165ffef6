"""`ia-world report runs=[dirs]`: table (mean +- std over seeds per masking strategy) and plots.

It only reads evaluations; `ia-world compare` (ia_world_app.compare) trains and evaluates the
runs, then calls `report`.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ia_world.atomic import atomic_write, atomic_write_bytes
from ia_world.checkpoint import (
    ENCODER_WEIGHTS,
    METRICS_FILE,
    read_config,
    read_metrics,
    resolve_checkpoint,
    resolve_weights,
)
from ia_world.config import check_choice, check_path, validate_tree
from ia_world.errors import CheckpointError, DataError
from ia_world.eval.curves import CURVE_FIELDS
from ia_world.eval.evaluate import eval_key
from ia_world.eval.features import CONTROLS
from ia_world.eval.spectrum import gain_pct
from ia_world.eval.stats import LEVEL, holm, seed_summary, t_pvalue
from ia_world.runlock import check_out_dir
from ia_world.training import LOG_FILE

log = logging.getLogger(__name__)
CAUSAL_TYPES = ("explanatory", "predictive", "counterfactual")
STRATEGY_ORDER = ("random_tube", "multiblock", "motion", "accel", "interaction", "untrained")


@dataclass
class ReportConfig:
    """`ia-world report`: which evaluated runs, relative to which baseline, written where."""

    runs: list[str] = field(default_factory=list)  # run / checkpoint dirs already evaluated
    out: str = "report"  # report.md and the PNG plots go here
    baseline: str = "random_tube"  # entropy gains are relative to this strategy
    encoder_weights: str = "trained"  # evaluation to report: trained (the run's) | target | encoder

    def validate(self) -> None:
        """Raise ConfigError on an empty out or unknown weights."""
        check_path("out", self.out)
        check_choice("encoder_weights", self.encoder_weights, ENCODER_WEIGHTS)


def read_eval(run: str | Path, weights: str = "trained") -> dict:
    """The evaluation of a run's trained (or EMA `target`, or online `encoder`) weights in its
    metrics.json."""
    candidates = [Path(run) / METRICS_FILE]
    with contextlib.suppress(CheckpointError):
        checkpoint = resolve_checkpoint(run)
        candidates.append(checkpoint / METRICS_FILE)
        weights = resolve_weights(checkpoint, weights)
    key = eval_key("target" if weights == "trained" else weights)  # no checkpoint: an EMA run's
    for path in candidates:
        if path.is_file():
            metrics = read_metrics(path)
            if key in metrics:
                return metrics[key]
    raise DataError(f"{run}: no evaluated metrics.json for the {weights} weights (run "
                    f"`ia-world evaluate ckpt={run} encoder_weights={weights}`)")


def check_controls(result: dict) -> None:
    """DataError for an evaluation made before the controls existed."""
    if "metrics" not in result:
        raise DataError(f"{result['run']['checkpoint']}: evaluated without controls; re-run "
                        "`ia-world evaluate` on it")


def scalar_metrics(result: dict) -> dict[str, float]:
    """The encoder's scalar numbers of one evaluation, keyed by table column."""
    check_controls(result)
    row = {name: metric["encoder"] for name, metric in result["metrics"].items()}
    row["RankMe"] = result["spectrum"]["rankme"]
    row["RankMe (centred)"] = result["spectrum"]["rankme_centered"]
    row["Gaussian entropy"] = result["spectrum"]["gaussian_entropy"]
    if "floor_rankme" in result["spectrum"]:  # evaluations from 2026-12-03 on
        row["RankMe / floor"] = row["RankMe"] / result["spectrum"]["floor_rankme"]
        row["RankMe (centred) / floor"] = (row["RankMe (centred)"]
                                           / result["spectrum"]["floor_rankme_centered"])
    causal = [row[f"QA {t} per-question"] for t in CAUSAL_TYPES
              if f"QA {t} per-question" in row]
    row["QA causal per-question"] = float(np.mean(causal)) if causal else float("nan")
    row.update({k: v for k, v in (result.get("masking") or {}).items()})
    return row


def control_table(groups: dict[str, list[dict]]) -> dict[str, dict[str, list[float]]]:
    """metric -> column -> values over runs: the controls (all runs), and per strategy its
    encoder values and gap closed."""
    table = defaultdict(lambda: defaultdict(list))
    for strategy, results in groups.items():
        for result in results:
            check_controls(result)
            for name, metric in result["metrics"].items():
                for control in (*CONTROLS, "density_blind", "shortcut"):
                    if control in metric:
                        table[name][control].append(metric[control])
                table[name][strategy].append(metric["encoder"])
                table[name][f"gap closed {strategy}"].append(metric["gap_closed"])
    return table


def cell(values: list[float]) -> str:
    """'mean ± std' of a list of numbers ('mean' for one)."""
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return "-"
    return f"{np.mean(values):.3f}" if len(values) == 1 else \
        f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def ci_cell(values: list[float]) -> str:
    """'mean [95% t-interval over runs]' ('mean' for one run); runs whose value is not finite
    are counted, never dropped silently."""
    summary = seed_summary(values)
    missing = f" ({summary['nan']} nan)" if summary["nan"] else ""
    if summary["n"] < 2:
        return cell(values) + missing
    low, high = summary["ci"]
    return f"{summary['mean']:+.2f} [{low:+.2f}, {high:+.2f}]{missing}"


def controls_markdown(table: dict[str, dict[str, list[float]]], strategies: list[str]) -> str:
    """One row per metric: floor, static, pixel, each strategy, ceiling, gaps closed (with
    their CI over seeds)."""
    columns = ["floor", "static", "pixel", "shortcut", *strategies, "density_blind", "ceiling"]
    gaps = [f"gap closed {s}" for s in strategies]
    lines = ["| metric | " + " | ".join(columns + gaps) + " |",
             "|---" * (len(columns) + len(gaps) + 1) + "|"]
    for name, cols in table.items():
        cells = [cell(cols.get(c, [])) for c in columns] + [ci_cell(cols.get(g, [])) for g in gaps]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_differences(groups: dict[str, list[dict]], baseline: str) -> dict[str, dict]:
    """metric -> strategy -> mean difference to the baseline over seeds (runs paired by seed),
    its 95% t-interval, its t-test p-value and the Holm-adjusted p-value over every cell."""
    if baseline not in groups:
        return {}
    base = {r["run"]["seed"]: scalar_metrics(r) for r in groups[baseline]}
    result = defaultdict(dict)
    for strategy, results in groups.items():
        if strategy == baseline:
            continue
        pairs = [(scalar_metrics(r), base[r["run"]["seed"]]) for r in results
                 if r["run"]["seed"] in base]
        for name in pairs[0][0] if pairs else []:
            differences = np.array([p[0].get(name, np.nan) - p[1].get(name, np.nan)
                                    for p in pairs], float)
            summary = seed_summary(differences)
            result[name][strategy] = {**summary, "seeds": summary["n"],
                                      "p": t_pvalue(differences)}
    cells = [d for row in result.values() for d in row.values()]
    for d, adjusted in zip(cells, holm([d["p"] for d in cells])):
        d["p_holm"] = float(adjusted)
    return dict(result)


def differences_markdown(differences: dict[str, dict], baseline: str) -> str:
    """Difference to the baseline per metric and strategy with its t-interval; a cell is
    marked (bold) only when its Holm-adjusted p-value is below 1 - LEVEL."""
    strategies = list(dict.fromkeys(s for row in differences.values() for s in row))
    lines = [f"| metric (strategy - {baseline}) | " + " | ".join(strategies) + " |",
             "|---" * (len(strategies) + 1) + "|"]
    for name, row in differences.items():
        cells = []
        for s in strategies:
            d = row.get(s)
            if d is None:
                cells.append("-")
                continue
            missing = f", {d['nan']} nan" if d["nan"] else ""
            if d["seeds"] < 2:
                cells.append(f"{d['mean']:+.3f} ({d['seeds']} seed{missing}: no CI)")
                continue
            text = (f"{d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] "
                    f"p_Holm={d['p_holm']:.2g} ({d['seeds']} seeds{missing})")
            cells.append(f"**{text}**" if d["p_holm"] < 1 - LEVEL else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chance_note(differences: dict[str, dict]) -> str:
    """How many cells chance alone would mark at the nominal level, and how many Holm marks."""
    cells = [d for row in differences.values() for d in row.values() if d["seeds"] >= 2]
    marked = sum(d["p_holm"] < 1 - LEVEL for d in cells)
    return (f"{len(cells)} cells: with no effect at all, about {(1 - LEVEL) * len(cells):.1f} "
            f"of them would have an unadjusted p < {1 - LEVEL:.2f} by chance alone; Holm's "
            f"correction keeps the chance of any false mark below {1 - LEVEL:.2f}. "
            f"Marked (bold): {marked}.")


def controls_plot(table: dict[str, dict[str, list[float]]], strategies: list[str],
                  path: Path) -> None:
    """A panel per metric: floor, static, pixel, each strategy, ceiling (mean ± std)."""
    names = list(table)
    columns = ["floor", "static", "pixel", *strategies, "ceiling"]
    cols = 4
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        means = [np.nanmean(table[name].get(c, [np.nan])) for c in columns]
        stds = [np.nanstd(table[name].get(c, [np.nan])) for c in columns]
        ax.bar(range(len(columns)), means, yerr=stds, capsize=2,
               color=["0.6", "0.75", "0.85", *["C0"] * len(strategies), "C2"])
        ax.set_xticks(range(len(columns)), columns, rotation=45, fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.axhline(0, color="k", lw=0.5)
    for ax in axes[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def group_by_strategy(results: list[dict]) -> dict[str, list[dict]]:
    """Evaluations grouped by masking strategy, in the canonical order."""
    groups = defaultdict(list)
    for result in results:
        groups[result["run"]["strategy"]].append(result)
    order = [s for s in STRATEGY_ORDER if s in groups] + sorted(set(groups) - set(STRATEGY_ORDER))
    return {s: groups[s] for s in order}


Curve = dict[str, list[tuple[int, float]]]  # probe field -> [(step, value)]; step 0: the floor


def run_curve(run: str | Path) -> tuple[str, Curve] | None:
    """(masking strategy, learning curve) from a run's log.csv (`pretrain probe_every=`); None
    for a run without curves or a bare checkpoint."""
    run = Path(run)
    with contextlib.suppress(CheckpointError):
        checkpoint = resolve_checkpoint(run)
        log_path = next((p / LOG_FILE for p in (run, checkpoint.parent.parent)
                         if (p / LOG_FILE).is_file()), None)
        if log_path is None:
            return None
        curve: Curve = {name: [] for name in CURVE_FIELDS}
        with log_path.open() as handle:
            for row in csv.DictReader(handle):
                for name in CURVE_FIELDS:
                    if row.get(name):
                        curve[name].append((int(row["step"]), float(row[name])))
        strategy = read_config(checkpoint).get("masking", {}).get("strategy", "?")
        return (strategy, curve) if any(curve.values()) else None
    return None


def curves_plot(curves: list[tuple[str, Curve]], path: Path) -> None:
    """Write curves_figure(curves) as a PNG."""
    save_figure(curves_figure(curves), path)


def curves_figure(curves: list[tuple[str, Curve]]) -> Figure:
    """One panel per curve probe: a line per run, coloured by strategy; dashed, in the same
    colour: each run's own floor (its step-0 value; runs that share an initialisation share it)."""
    strategies = list(dict.fromkeys(strategy for strategy, _ in curves))
    colours = {s: f"C{i}" for i, s in enumerate(strategies)}
    fig = Figure(figsize=(10, 5.4), layout="constrained")  # no title over an axis label
    for ax, name in zip(fig.subplots(2, 3).ravel(), CURVE_FIELDS):
        for i, (strategy, curve) in enumerate(curves):
            if curve[name]:
                steps, values = zip(*curve[name])
                first = [s for s, _ in curves].index(strategy) == i
                ax.plot(steps, values, color=colours[strategy], alpha=0.8, marker=".",
                        label=strategy if first else None)
        floors = {(curve[name][0][1], colours[strategy]) for strategy, curve in curves
                  if curve[name] and curve[name][0][0] == 0}
        for i, (floor, colour) in enumerate(sorted(floors)):
            ax.axhline(floor, color=colour, ls="--", lw=0.8, label=None if i else "floor")
        ax.set_title(name.removeprefix("probe_"), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle("learning curves (validation role; ia_world/eval/curves.py)", fontsize=10)
    return fig


def curves_markdown(curves: list[tuple[str, Curve]]) -> str:
    """Per strategy and probe step: the curve probes' mean over runs (n runs)."""
    table: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for strategy, curve in curves:
        for name in CURVE_FIELDS:
            for step, value in curve[name]:
                table[strategy, step][name].append(value)
    header = ["strategy", "step", "runs", *(n.removeprefix("probe_") for n in CURVE_FIELDS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (strategy, step), values in sorted(table.items()):
        runs = max(len(v) for v in values.values())
        cells = [f"{np.mean(values[n]):.3f}" if values[n] else "" for n in CURVE_FIELDS]
        lines.append(f"| {strategy} | {step} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_gains(table: dict[str, dict[str, list[float]]], baseline: str) -> None:
    """Entropy gains in % over the baseline strategy's mean, per run."""
    if baseline not in table:
        return
    for key in ("RankMe", "Gaussian entropy"):
        base = float(np.mean(table[baseline][key]))
        for columns in table.values():
            columns[f"{key} gain %"] = [gain_pct(v, base) for v in columns[key]]


def markdown_table(table: dict[str, dict[str, list[float]]]) -> str:
    """One row per strategy, one column per metric, cells 'mean +- std (n)'."""
    columns = list(dict.fromkeys(c for cols in table.values() for c in cols))
    lines = ["| strategy | runs | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for strategy, cols in table.items():
        cells = [f"{np.mean(cols[c]):.3f} ± {np.std(cols[c]):.3f}" if c in cols else "-"
                 for c in columns]
        runs = len(next(iter(cols.values())))
        lines.append(f"| {strategy} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_figure(fig: Figure, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically."""
    atomic_write(path, lambda temp: fig.savefig(temp, format="png", dpi=110,
                                                bbox_inches="tight"))


def bar_plot(table: dict, keys: list[str], title: str, path: Path) -> None:
    """Grouped bars (mean +- std over runs) of `keys` per strategy."""
    fig = Figure(figsize=(1.6 + 1.2 * len(table), 3.2))
    ax = fig.subplots()
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        means = [np.mean(cols.get(key, [np.nan])) for cols in table.values()]
        stds = [np.std(cols.get(key, [np.nan])) for cols in table.values()]
        ax.bar(np.arange(len(table)) + i * width, means, width, yerr=stds, label=key, capsize=2)
    ax.set_xticks(np.arange(len(table)) + 0.4 - width / 2, list(table), rotation=20)
    ax.set_title(title)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def scatter_plot(groups: dict[str, list[dict]], path: Path) -> None:
    """Predicted vs true total energy on the held-out split (first run of each strategy)."""
    fig = Figure(figsize=(4.2, 4))
    ax = fig.subplots()
    for strategy, results in groups.items():
        probe = results[0]["probe"]["total_energy"]["encoder"]
        ax.scatter(probe["true"], probe["predicted"], s=8, alpha=0.6,
                   label=f"{strategy} (R²={probe['r2']:.2f})")
    low, high = ax.get_xlim()
    ax.plot([low, high], [low, high], "k--", lw=0.8)
    ax.set_xlabel("true total energy")
    ax.set_ylabel("predicted")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def spectrum_plot(groups: dict[str, list[dict]], path: Path) -> None:
    """Normalised singular-value spectra of the held-out embeddings (log scale)."""
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    for strategy, results in groups.items():
        sigma = np.array(results[0]["spectrum"]["singular_values"])
        ax.semilogy(sigma / sigma.sum(), label=strategy)
    ax.set_xlabel("index")
    ax.set_ylabel("σ_k / Σσ")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def within_run_markdown(groups: dict[str, list[dict]]) -> str:
    """Per probe or QA row and strategy: how many runs' paired bootstrap CI (over held-out
    episodes; QA: clips) of encoder - floor lies above 0 / below 0."""
    names = list(dict.fromkeys(name for results in groups.values() for r in results
                               for name, m in r["metrics"].items() if "paired_ci" in m))
    lines = ["| metric | " + " | ".join(f"{s}: encoder - floor > 0 / < 0 (runs)"
                                       for s in groups) + " |",
             "|---" * (len(groups) + 1) + "|"]
    for name in names:
        cells = []
        for results in groups.values():
            cis = [r["metrics"][name]["paired_ci"]["encoder - floor"] for r in results
                   if name in r["metrics"] and "paired_ci" in r["metrics"][name]]
            above = sum(ci[0] > 0 for ci in cis)
            below = sum(ci[1] < 0 for ci in cis)
            cells.append(f"{above} / {below} of {len(cis)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_one_role(results: list[dict]) -> None:
    """DataError when the evaluations mix split roles (val and test figures never mix)."""
    roles = {r["splits"].get("role", "unknown") for r in results}
    if len(roles) > 1:
        raise DataError(f"report: the evaluations mix split roles {sorted(roles)}; report "
                        "val and test evaluations separately")


def metric_table(groups: dict[str, list[dict]], baseline: str) -> dict[str, dict[str, list]]:
    """strategy -> metric -> values over runs (scalar_metrics), entropy gains included."""
    table = {s: defaultdict(list) for s in groups}
    for strategy, members in groups.items():
        for result in members:
            for key, value in scalar_metrics(result).items():
                table[strategy][key].append(value)
    add_gains(table, baseline)
    return table


def write_report(results: list[dict], out: Path, baseline: str,
                 curves: list[tuple[str, Curve]] = ()) -> Path:
    """report.md plus PNG plots under `out` (and the runs' learning curves, if they logged
    any); returns the report's path."""
    check_one_role(results)
    groups = group_by_strategy(results)
    table = metric_table(groups, baseline)
    controls = control_table(groups)
    out.mkdir(parents=True, exist_ok=True)
    r2_keys = [k for k in table[next(iter(table))] if k.startswith("R2")]
    bar_plot(table, r2_keys, "probe R² (held-out)", out / "r2.png")
    qa_keys = [k for k in table[next(iter(table))] if k.startswith("QA ") and "option" in k]
    bar_plot(table, qa_keys, "QA accuracy per option (held-out)", out / "qa.png")
    controls_plot(controls, list(groups), out / "controls.png")
    hit_keys = [k for cols in table.values() for k in cols if k.startswith("hit@")]
    plots = ["controls.png", "r2.png", "qa.png", "energy_scatter.png", "spectra.png"]
    if hit_keys:
        bar_plot(table, list(dict.fromkeys(hit_keys)) + ["selectivity"], "mask hit-rate",
                 out / "mask_hitrate.png")
        plots.append("mask_hitrate.png")
    scatter_plot(groups, out / "energy_scatter.png")
    spectrum_plot(groups, out / "spectra.png")
    curve_section = []
    if curves:
        curves_plot(curves, out / "curves.png")
        curve_section = ["## Learning curves", "Validation-role probes logged while pretraining "
                         "(`probe_every`; step 0 = the floor, the initialisation), mean over "
                         "runs; one line per run in curves.png.", curves_markdown(curves),
                         "![curves.png](curves.png)"]
    first = results[0]
    differences = paired_differences(groups, baseline)
    text = "\n\n".join([
        "# ia-world comparison report",
        f"{len(results)} evaluated runs; mean ± std over runs (seeds) per masking strategy. "
        f"Split role: **{first['splits'].get('role', 'unknown')}** (val: every choice; test: "
        f"claims only). Held-out split: {first['splits']['heldout_episodes']} episodes from "
        f"base seed "
        f"{first['splits']['heldout_seed']}; probe training split: "
        f"{first['splits']['train_episodes']} episodes from base seed "
        f"{first['splits']['train_seed']}; fixed-count splits (QA and `(fixed count)` probes): "
        f"{first['splits'].get('fixed_train_episodes')} + "
        f"{first['splits'].get('fixed_heldout_episodes')} episodes with "
        f"{first['splits'].get('fixed_count')} bodies each.",
        "## Encoder against its controls",
        "floor = the architecture at its initialisation, static = first frame repeated, pixel = "
        "ridge on PCA of downsampled frames and absolute frame differences per time step, "
        "ceiling = ground-truth state, all through the same probe / head; "
        "shortcut (QA) = a head given only the collision events the video shows; "
        "density_blind = the best density-blind feature set (sizes and speeds, no mass; chosen "
        "on the training split); gap closed = (encoder - floor) / (ceiling - floor), mean "
        "over seeds with its 95% t-interval over seeds.",
        controls_markdown(controls, list(groups)),
        "## Within each run: encoder against its own floor",
        "Paired bootstrap over the held-out episodes (QA: the held-out clips; the same "
        "resamples for both), 95%; with no effect, about 2.5% of runs land above 0 and 2.5% "
        "below by chance.",
        within_run_markdown(groups),
        f"## Differences to `{baseline}`",
        "Mean difference over seeds (runs paired by seed) with its 95% t-interval and the "
        "Holm-adjusted p-value of a paired t-test over every cell of the table.",
        chance_note(differences),
        differences_markdown(differences, baseline),
        "## All metrics per strategy",
        f"Gains are relative to `{baseline}`. QA baselines (majority answer, coin flip): 0.5 "
        "per option.",
        markdown_table(table),
        *(f"![{p}]({p})" for p in plots),
        *curve_section])
    path = out / "report.md"
    atomic_write_bytes(path, (text + "\n").encode())
    return path


def report(cfg: ReportConfig) -> Path:
    """Write <out>/report.md and its plots from the runs' evaluations; returns report.md."""
    validate_tree(cfg)
    if not cfg.runs:
        raise DataError("report: no runs given (runs=[dir1,dir2,...]; `ia-world compare` trains "
                        "and evaluates them)")
    check_out_dir(cfg.out)  # before any work
    curves = [curve for curve in map(run_curve, cfg.runs) if curve is not None]
    path = write_report([read_eval(r, cfg.encoder_weights) for r in cfg.runs], Path(cfg.out),
                        cfg.baseline, curves)
    print(f"report: {path}")
    return path
