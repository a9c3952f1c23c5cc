"""What a federation leaves behind in its output folder, written atomically after every round
(``envs.atomic``) so an interrupted federation resumes where it stopped:

- ``checkpoint.npz``: the global weights (``w<i>``), the global normalisation statistics
  (``norm_mean``, ``norm_var``, ``norm_count``), the strategy's server-side state (``s<i>``:
  FedAdam's moments, FedAvgM's momentum, :func:`federation.strategies.strategy_state`) and
  ``meta`` (JSON: the last completed round, the strategy, the weight count, the state's names)
  — one file written atomically, so weights and strategy state never disagree;
- ``rounds.csv``: one row per round and node — ``round``, ``node``, ``role`` (``train`` for the
  training nodes' evaluation of the global policy, ``held-out`` for the node that never trains),
  ``return``, ``objective`` and the other evaluation metrics, the node's training metrics of
  that round (``train_*``), ``accepted`` (its update was averaged in: 1/0), ``round_s``;
- ``return.png``: the global policy's return per node per round;
- ``tensorboard/``: the same scalars for TensorBoard (if ``tensorboard`` is on);
- ``rejections.csv``: every update left out (round, node id, node, reason).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.atomic import atomic_path, write_atomic
from federation.normalisation import NormStats

__all__ = ["Checkpoint", "RoundLog", "load_checkpoint", "save_checkpoint"]

CHECKPOINT = "checkpoint.npz"
ROUNDS_CSV = "rounds.csv"
REJECTIONS_CSV = "rejections.csv"
RETURN_PNG = "return.png"


@dataclass
class Checkpoint:
    """The global model after ``server_round`` completed rounds, and the server-side state of
    the strategy that produced it (named arrays; empty for stateless strategies)."""

    server_round: int
    weights: list[np.ndarray]
    norm: NormStats
    strategy: str
    strategy_state: dict[str, np.ndarray] = field(default_factory=dict)


def save_checkpoint(folder: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint.npz`` into ``folder`` atomically; its path."""
    path = Path(folder) / CHECKPOINT
    meta = {
        "round": checkpoint.server_round,
        "strategy": checkpoint.strategy,
        "weights": len(checkpoint.weights),
        "state": list(checkpoint.strategy_state),
    }
    arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(checkpoint.weights)}
    arrays.update(
        {f"s{i}": np.asarray(v) for i, v in enumerate(checkpoint.strategy_state.values())}
    )
    arrays.update(
        norm_mean=checkpoint.norm.mean,
        norm_var=checkpoint.norm.var,
        norm_count=np.array([checkpoint.norm.count]),
        meta=np.array(json.dumps(meta)),
    )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return write_atomic(path, buffer.getvalue())


def load_checkpoint(folder: str | Path) -> Checkpoint | None:
    """The checkpoint in ``folder``, None if there is none; ValueError naming the file if it
    is not one."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weights = [np.array(data[f"w{i}"]) for i in range(int(meta["weights"]))]
            norm = NormStats(data["norm_mean"], data["norm_var"], float(data["norm_count"][0]))
            state = {
                str(name): np.array(data[f"s{i}"]) for i, name in enumerate(meta.get("state", []))
            }
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{path} is not a federation checkpoint: {error}") from error
    return Checkpoint(int(meta["round"]), weights, norm, str(meta.get("strategy", "")), state)


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


class RoundLog:
    """Rows of ``rounds.csv`` (kept in memory, re-read on resume), the PNG and TensorBoard."""

    def __init__(self, folder: str | Path, *, tensorboard: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.rejections: list[dict[str, Any]] = []
        self._writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.folder / "tensorboard"))
            except ImportError:  # tensorboard is a dependency; without it, CSV and PNG only
                self._writer = None

    def resume(self, last_round: int) -> None:
        """Keep the rows of rounds up to ``last_round`` from the existing CSVs."""
        for name, rows in ((ROUNDS_CSV, self.rows), (REJECTIONS_CSV, self.rejections)):
            path = self.folder / name
            if not path.is_file():
                continue
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    parsed = {
                        k: _number(v) if name == ROUNDS_CSV or k in ("round", "node_id") else v
                        for k, v in row.items()
                        if v != ""
                    }
                    if int(parsed.get("round", 0)) <= last_round:
                        rows.append(parsed)

    def add(
        self,
        server_round: int,
        node: str,
        role: str,
        evaluation: Mapping[str, float],
        training: Mapping[str, float] | None = None,
        **extra: Any,
    ) -> None:
        """One node's row for one round (evaluation metrics, ``train_``-prefixed training
        metrics, extra columns)."""
        row: dict[str, Any] = {"round": server_round, "node": node, "role": role}
        row.update({k: float(v) for k, v in evaluation.items()})
        row.update({f"train_{k}": float(v) for k, v in (training or {}).items()})
        row.update(extra)
        self.rows.append(row)
        if self._writer is not None:
            for key in ("return", "objective"):
                if key in evaluation:
                    self._writer.add_scalar(f"{key}/{node}", float(evaluation[key]), server_round)

    def reject(self, server_round: int, node_id: int, node: str, reason: str) -> None:
        """Record an update left out."""
        self.rejections.append(
            {"round": server_round, "node_id": node_id, "node": node, "reason": reason}
        )

    @staticmethod
    def _csv(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> str:
        columns = list(first)
        for row in rows:
            columns += [key for key in row if key not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def write(self) -> None:
        """Rewrite the CSVs and the PNG (atomically) and flush TensorBoard."""
        write_atomic(self.folder / ROUNDS_CSV, self._csv(self.rows, ("round", "node", "role")))
        write_atomic(
            self.folder / REJECTIONS_CSV,
            self._csv(self.rejections, ("round", "node_id", "node", "reason")),
        )
        self._plot()
        if self._writer is not None:
            self._writer.flush()

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        nodes: dict[str, list[tuple[int, float]]] = {}
        roles: dict[str, str] = {}
        for row in self.rows:
            if "return" in row:
                nodes.setdefault(str(row["node"]), []).append((int(row["round"]), row["return"]))
                roles[str(row["node"])] = str(row.get("role", ""))
        figure, axes = plt.subplots(figsize=(7, 4))
        for node, points in sorted(nodes.items()):
            points.sort()
            style = "--" if roles[node] == "held-out" else "-"
            axes.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", label=node)
        axes.set_xlabel("round")
        axes.set_ylabel("episode return of the global policy")
        axes.set_title("Federated PPO: return per node (dashed: held-out node)")
        if nodes:
            axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        with atomic_path(self.folder / RETURN_PNG) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
        plt.close(figure)

    def close(self) -> None:
        """Close TensorBoard's writer."""
        if self._writer is not None:
            self._writer.close()
