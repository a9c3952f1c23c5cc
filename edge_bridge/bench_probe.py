"""Measuring the bridge from outside for the benchmark (:mod:`edge_bridge.bench`).

:class:`Probe` wraps methods of one running :class:`~edge_bridge.service.BridgeService` as
instance attributes (the classes are untouched, nothing changes for other bridges): per decision
the seconds in each of :data:`PARTS`, per telemetry message its ingest lag (``sent_at`` → handled
on the bridge's loop thread), the time spent handling telemetry and acks; optionally a cProfile
of the decisions. :class:`LoadSampler` samples the machine's load average (the machine may be
shared with other work, which the figures must say).
"""

from __future__ import annotations

import cProfile
import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_bridge.service import BridgeService

__all__ = ["DECISION_PARTS", "PARTS", "LoadSampler", "Probe"]

DECISION_PARTS = (
    "twin",
    "comparison",
    "gate",
    "proposals",
    "envelope",
    "ledger",
    "audit",
    "gate_save",
)
"""The timed pieces inside ``DecisionLoop.decide``."""
PARTS = (*DECISION_PARTS, "publish", "reports", "status", "rest")
"""The timed pieces of one decision on the bridge's thread: those of ``decide``, the commands'
publish, the twin reports' publish, the status publish, and ``rest`` = the whole decision − the
decide call − the publishes (the decision transaction's COMMIT, one fsync, and bookkeeping)."""


class Probe:
    """Wraps methods of one ``BridgeService`` (instance attributes; the classes are untouched):
    per decision the seconds in each of :data:`PARTS`, the whole ``_decide`` and ``decide``;
    per telemetry message its ingest lag; the time spent on acks."""

    def __init__(self, service: BridgeService, *, profile: bool = False) -> None:
        self.decisions: list[dict[str, float]] = []
        self.ingest_lag_s: list[float] = []
        self.telemetry_s = 0.0
        self.ack_s = 0.0
        self.acks = 0
        self.profiler = cProfile.Profile() if profile else None
        self._current: dict[str, float] | None = None
        loop = service.loop
        parts: list[tuple[object, str, str]] = [
            (loop, "_update_twin", "twin"),
            (loop.gate, "observe", "gate"),
            (loop.gate, "assignments", "gate"),
            (loop.incumbent, "propose", "proposals"),
            (loop.envelope, "check", "envelope"),
            (loop.ledger, "create", "ledger"),
            (loop.audit, "record", "audit"),
            (loop.audit, "event", "audit"),
            (loop.gate, "save", "gate_save"),
            (service, "_publish_command", "publish"),
            (service, "_publish_status", "status"),
            (loop, "decide", "decide"),
        ]
        if loop.candidate is not None:
            parts.append((loop.candidate, "propose", "proposals"))
        if loop.comparison is not None:
            parts.append((loop.comparison, "step", "comparison"))
        for owner, name, part in parts:
            self._time(owner, name, part)
        self._wrap_reports(service)
        self._wrap_decide(service)
        self._wrap_intake(service)

    def _time(self, owner: object, name: str, part: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            current = self._current
            if current is None:
                return original(*args, **kwargs)
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                current[part] += time.perf_counter() - began

        setattr(owner, name, timed)

    def _wrap_reports(self, service: BridgeService) -> None:
        publish = service.client.publish

        def timed(topic: str, *args: Any, **kwargs: Any) -> Any:
            current = self._current
            if current is None or not topic.endswith("/twin"):
                return publish(topic, *args, **kwargs)
            began = time.perf_counter()
            try:
                return publish(topic, *args, **kwargs)
            finally:
                current["reports"] += time.perf_counter() - began

        service.client.publish = timed  # type: ignore[method-assign]

    def _wrap_decide(self, service: BridgeService) -> None:
        original = service._decide

        def decide() -> None:
            self._current = current = defaultdict(float)
            began = time.perf_counter()
            try:
                if self.profiler is not None:
                    self.profiler.runcall(original)
                else:
                    original()
            finally:
                current["total"] = total = time.perf_counter() - began
                outer = ("decide", "publish", "reports", "status")
                current["rest"] = total - sum(current.get(p, 0.0) for p in outer)
                self._current = None
                self.decisions.append(dict(current))

        service._decide = decide  # type: ignore[method-assign]

    def _wrap_intake(self, service: BridgeService) -> None:
        telemetry, ack = service._telemetry, service._ack

        def on_telemetry(message: Any) -> None:
            began = time.perf_counter()
            telemetry(message)
            self.ingest_lag_s.append(time.time() - message.sent_at)
            self.telemetry_s += time.perf_counter() - began

        def on_ack(message: Any) -> None:
            began = time.perf_counter()
            ack(message)
            self.ack_s += time.perf_counter() - began
            self.acks += 1

        service._telemetry = on_telemetry  # type: ignore[method-assign]
        service._ack = on_ack  # type: ignore[method-assign]


class LoadSampler:
    """The 1-minute load average sampled during a run (the machine may be shared)."""

    def __init__(self) -> None:
        self.start = os.getloadavg()
        self.samples = [self.start[0]]

    def sample(self) -> None:
        """Take one sample of the 1-minute load average."""
        self.samples.append(os.getloadavg()[0])

    def figures(self) -> dict[str, Any]:
        """Cores, the load averages at the start and now, the 1-minute mean and max."""
        return {
            "cores": os.cpu_count(),
            "at_start": list(self.start),
            "at_end": list(os.getloadavg()),
            "one_min_mean": float(np.mean(self.samples)),
            "one_min_max": float(np.max(self.samples)),
        }
