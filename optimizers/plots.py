"""PNG plots, written atomically: the Pareto front of a run (pairwise objectives, feasible vs
infeasible) and the anytime hypervolume curves of a benchmark (median with the interquartile
band)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from envs.atomic import atomic_path
from optimizers.archive import Archive

LABELS = {"cost": "C cost [EUR]", "energy_kwh": "E energy [kWh]", "downtime_h": "D downtime [h]"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(
    archive: Archive,
    obj_names: tuple[str, ...],
    path: Path,
    *,
    chosen: int | None = None,
    title: str = "",
) -> Path:
    """One panel per pair of objectives: infeasible evaluations (grey ×), feasible ones (blue),
    the feasible Pareto front (red) and the chosen plan (star; ``chosen`` is an archive index).
    Failed simulations have no KPIs and are not drawn (they are counted in pareto.json)."""
    plt = _pyplot()
    F, ok, feasible = archive.F, archive.ok, archive.feasible()
    front = archive.front_indices()
    pairs = list(combinations(range(len(obj_names)), 2))
    figure, axes = plt.subplots(1, len(pairs), figsize=(5.0 * len(pairs), 4.4), squeeze=False)
    for axis, (i, j) in zip(axes[0], pairs, strict=True):
        infeasible = ok & ~feasible
        axis.scatter(
            F[infeasible, i],
            F[infeasible, j],
            marker="x",
            s=14,
            c="0.65",
            label=f"infeasible ({infeasible.sum()})",
        )
        axis.scatter(
            F[feasible, i],
            F[feasible, j],
            s=12,
            c="C0",
            alpha=0.6,
            label=f"feasible ({feasible.sum()})",
        )
        axis.scatter(F[front, i], F[front, j], s=26, c="C3", label=f"Pareto set ({len(front)})")
        if chosen is not None:
            axis.scatter(
                F[chosen, i],
                F[chosen, j],
                marker="*",
                s=240,
                c="gold",
                edgecolors="k",
                label="chosen",
                zorder=5,
            )
        axis.set_xlabel(LABELS.get(obj_names[i], obj_names[i]))
        axis.set_ylabel(LABELS.get(obj_names[j], obj_names[j]))
        if ok.any():  # zoom on successful evaluations
            for setter, values in ((axis.set_xlim, F[ok, i]), (axis.set_ylim, F[ok, j])):
                low, high = float(values.min()), float(values.max())
                pad = 0.05 * (high - low or 1.0)
                setter(low - pad, high + pad)
    axes[0, 0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temporary:  # the format follows the suffix, kept by the temporary
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return path


def plot_anytime(curves: dict[str, dict[str, np.ndarray]], path: Path, *, title: str = "") -> Path:
    """``curves[algorithm] = {"evaluations": k, "hv": array (seeds × k)}``: median HV against
    evaluations with the interquartile band, one line per algorithm."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.0, 4.6))
    for n, (name, curve) in enumerate(curves.items()):
        hv = np.atleast_2d(curve["hv"])
        median = np.median(hv, axis=0)
        low, high = np.percentile(hv, [25, 75], axis=0)
        axis.plot(curve["evaluations"], median, color=f"C{n}", label=name)
        axis.fill_between(curve["evaluations"], low, high, color=f"C{n}", alpha=0.18)
    axis.set_xlabel("evaluations")
    axis.set_ylabel("hypervolume (normalised, archive)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temporary:  # the format follows the suffix, kept by the temporary
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return path
