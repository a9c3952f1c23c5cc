"""Everything on one machine: a Mosquitto broker in a folder, the bridge service on a background
thread and the plant emulator (``envs.plant.Plant`` on MQTT) on another thread — for a first
look (``scripts/bridge.py local``), the rollout report and the operator console.

    with LocalDeployment("runs/local", settings, plant_config) as deployment:
        deployment.run(288)              # 24 h of plant time, lock-step: faster than real time
        deployment.settle()              # the last interval's commands answered
        rows = deployment.bridge.audit.query()

Layout of ``folder``: ``mosquitto/`` (generated config, password and ACL files, persistence,
log) and ``bridge.sqlite`` (the bridge's store: audit, events, commands, gate state).

The bridge's ``settings`` are used as given except where the deployment decides: the broker
(``mqtt.host``/``port``/``username``, the password of the generated bridge account) and the
store (``folder/bridge.sqlite``). The plant config must describe the plant the settings expect
(scenario, ``start_h``, ``sample_interval_s``); a mismatch is a :class:`ValueError` naming both
values. Its ``[[drift]]`` events are kept unless ``keep_plant_drift=False``; ``drift`` adds
events (:meth:`PlantEmulator.inject_drift`). Faults (telemetry drops, ack delays, going offline)
are the :class:`EmulatorConfig`'s, or called on :attr:`emulator` while it runs.

The emulator is lock-step by default (it waits for each interval's commands, so a day runs in
minutes); ``realtime_factor`` free-runs it on a wall clock instead (plant seconds per wall
second). :meth:`stop` (and leaving the ``with`` block) stops in the order that loses nothing:
the emulator (a clean disconnect: no death), the bridge (offline STATE, store closed), the
broker, the plant's FMUs.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from edge_bridge.broker import Broker
from edge_bridge.commands import DedupWindow
from edge_bridge.equipment import EmulatorConfig, PlantEmulator, StepResult
from edge_bridge.gate_config import GateConfig
from edge_bridge.service import BridgeService
from edge_bridge.settings import BridgeSettings
from envs.config import from_mapping, merge_tables, read_toml, write_toml
from envs.plant import DriftEvent, Plant, PlantConfig, load_plant_config

__all__ = [
    "DEFAULT_GATE",
    "DEFAULT_PLANT",
    "CountingDedup",
    "LocalDeployment",
    "check_plant_matches",
    "write_gate_config",
]

DEFAULT_PLANT = "configs/plant_example.toml"
"""The example plant (``envs.plant``) the deployment emulates unless told otherwise."""
DEFAULT_GATE = "configs/bridge/gate.toml"
"""The example gate config (``edge_bridge.gate_config``)."""


def write_gate_config(
    path: str | Path, source: str | Path = DEFAULT_GATE, **changes: Any
) -> GateConfig:
    """Write the gate config ``source`` with top-level keys replaced by ``changes`` (e.g.
    ``require_approval=False`` for an unattended run) to ``path``, validated before anything is
    written (:class:`envs.config.ConfigError` naming the key); returns it."""
    data = merge_tables(read_toml(source), changes)
    config = from_mapping(GateConfig, data, source=f"{source} with {sorted(changes)}")
    write_toml(config, path)
    return config


class CountingDedup(DedupWindow):
    """The equipment's dedup window that also counts, per idempotency key, how often a command
    was applied (``remember`` is called once per application): a key counted twice is a command
    applied twice."""

    def __init__(self, capacity: int = 10_000) -> None:
        super().__init__(capacity)
        self.applications: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:  # an empty window is still a window (``dedup or default``)
        return True

    def remember(self, command_id: str, key: str) -> bool:
        with self._lock:
            self.applications[key] += 1
        return super().remember(command_id, key)

    def applied_twice(self) -> list[str]:
        """Idempotency keys applied more than once (goal: none)."""
        with self._lock:
            return sorted(key for key, count in self.applications.items() if count > 1)


def check_plant_matches(settings: BridgeSettings, plant: PlantConfig) -> None:
    """ValueError unless the plant is the one the bridge's settings describe (scenario, calendar
    start, sampling period)."""
    pairs = (
        ("scenario", settings.scenario, plant.scenario),
        ("start_h", settings.start_h, plant.start_h),
        ("sample_interval_s", settings.sample_interval_s, plant.sample_interval_s),
    )
    for name, expected, actual in pairs:
        if expected != actual:
            raise ValueError(
                f"the bridge's {name} is {expected!r} but the plant config's is {actual!r}; "
                "make them equal (bridge.toml or the plant config)"
            )


class LocalDeployment:
    """Broker + bridge + emulated plant in ``folder`` (module docstring)."""

    def __init__(
        self,
        folder: str | Path,
        settings: BridgeSettings | None = None,
        plant: PlantConfig | str | Path = DEFAULT_PLANT,
        *,
        keep_plant_drift: bool = True,
        drift: Sequence[DriftEvent] = (),
        emulator: EmulatorConfig | None = None,
        realtime_factor: float | None = None,
        broker_tls: bool = False,
    ) -> None:
        self.folder = Path(folder)
        config = plant if isinstance(plant, PlantConfig) else load_plant_config(plant)
        if not keep_plant_drift:
            config = dataclasses.replace(config, drift=())
        settings = settings or BridgeSettings()
        check_plant_matches(settings, config)
        if realtime_factor is not None and not realtime_factor > 0:
            raise ValueError(
                f"realtime_factor = {realtime_factor!r} must be > 0 (plant seconds per wall "
                "second), or None for lock-step"
            )
        self.plant_config = config
        self.drift = tuple(drift)
        for event in self.drift:
            if event.machine and event.machine not in self._machine_names(settings):
                raise ValueError(
                    f"drift machine {event.machine!r} is not on this line; the machines are "
                    f"{', '.join(self._machine_names(settings))} (empty: every machine)"
                )
        self.realtime_factor = realtime_factor
        self.emulator_config = dataclasses.replace(
            emulator or EmulatorConfig(), site=settings.mqtt.site
        )
        self.broker = Broker(self.folder / "mosquitto", tls=broker_tls)
        self.store_path = self.folder / "bridge.sqlite"
        account = self.broker.account("bridge")
        self.settings = dataclasses.replace(
            settings,
            store=str(self.store_path),
            mqtt=dataclasses.replace(
                settings.mqtt,
                host=self.broker.host,
                port=self.broker.port,
                username=account.username,
                password_file="",
                ca_file="",
            ),
        )
        self.dedup = CountingDedup()
        self.results: list[StepResult] = []
        self._bridge: BridgeService | None = None
        self._emulator: PlantEmulator | None = None
        self._plant: Plant | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @staticmethod
    def _machine_names(settings: BridgeSettings) -> list[str]:
        from envs.scenario import load_scenario

        return list(load_scenario(settings.scenario).machine_names)

    # -- accessors ------------------------------------------------------------------------
    @property
    def bridge(self) -> BridgeService:
        """The running bridge service (RuntimeError before :meth:`start`)."""
        if self._bridge is None:
            raise RuntimeError("the deployment is not started; call start() first")
        return self._bridge

    @property
    def emulator(self) -> PlantEmulator:
        """The plant emulator (RuntimeError before :meth:`start`)."""
        if self._emulator is None:
            raise RuntimeError("the deployment is not started; call start() first")
        return self._emulator

    @property
    def running(self) -> bool:
        """Whether the emulator thread is stepping."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> LocalDeployment:
        """Start the broker, the bridge (background thread) and the emulator (connected, birth,
        the t = 0 sample published, drift scheduled). On any failure what started is
        stopped again and the error raised (BrokerError, ConfigError, ValueError, ...)."""
        if self._bridge is not None:
            return self
        try:
            self.broker.start(timeout_s)
            self._bridge = BridgeService(
                self.settings, password=self.broker.account("bridge").password
            )
            self._bridge.start(timeout_s)
            self._plant = Plant(self.plant_config)
            settings = self.broker.settings(
                "equipment", self.emulator_config.node, session_expiry_s=3600
            )
            self._emulator = PlantEmulator(
                self._plant, settings, self.emulator_config, dedup=self.dedup
            )
            self._emulator.start()
            self._emulator.reset()
            for event in self.drift:
                self._emulator.inject_drift(event)
        except BaseException:
            self.stop()
            raise
        return self

    def run_emulator(
        self,
        intervals: int | None = None,
        progress: Callable[[StepResult], None] | None = None,
    ) -> None:
        """Step the emulator on a background thread: ``intervals`` decision intervals (None:
        until :meth:`stop`), lock-step or at the real-time factor; ``progress`` gets every
        :class:`StepResult` on that thread (it may call the broker's or the emulator's fault
        methods). RuntimeError if it is already running."""
        emulator = self.emulator
        if self.running:
            raise RuntimeError("the emulator is already running; wait() for it first")
        self._error = None

        def step(result: StepResult) -> None:
            self.results.append(result)
            if progress is not None:
                progress(result)

        def body() -> None:
            try:
                emulator.run(intervals, realtime_factor=self.realtime_factor, progress=step)
            except BaseException as error:  # handed to wait()
                self._error = error

        self._thread = threading.Thread(target=body, name="plant-emulator", daemon=True)
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the emulator thread; True when it finished (re-raises its error)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return False
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return True

    def run(
        self,
        intervals: int,
        progress: Callable[[StepResult], None] | None = None,
    ) -> list[StepResult]:
        """Run ``intervals`` decision intervals on the emulator thread and wait for them;
        returns their results."""
        first = len(self.results)
        self.run_emulator(intervals, progress)
        self.wait()
        return self.results[first:]

    def settle(self, timeout_s: float = 10.0) -> bool:
        """After a run: wait until the bridge has decided every interval the emulator stepped,
        then answer the commands of the last one (the emulator's next step would) until the
        ledger holds no pending command. True if that happened within ``timeout_s``."""
        if self.running:
            raise RuntimeError("the emulator is still running; wait() for it first")
        bridge, emulator = self.bridge, self.emulator
        deadline = time.monotonic() + timeout_s
        last = self.results[-1].interval if self.results else -1
        while time.monotonic() < deadline:
            emulator.process_commands(0.05)
            decisions = bridge.decisions
            decided = last < 0 or bool(decisions and decisions[-1].index >= last)
            if decided and not bridge.loop.ledger.pending():
                return True
        return False

    def restart_bridge(self, timeout_s: float = 10.0) -> BridgeService:
        """Stop the bridge and start a new one on the same store (a bridge restart: it resumes
        the gate, the ledger and the decision index); the broker and the plant keep running."""
        if self._bridge is None:
            raise RuntimeError("the deployment is not started")
        self._bridge.stop()
        self._bridge = None
        bridge = BridgeService(self.settings, password=self.broker.account("bridge").password)
        bridge.start(timeout_s)
        self._bridge = bridge
        return bridge

    def stop(self) -> None:
        """Stop emulator, bridge, broker and plant, in that order (module docstring); safe to
        call twice or after a failed start."""
        emulator, self._emulator = self._emulator, None
        bridge, self._bridge = self._bridge, None
        plant, self._plant = self._plant, None
        try:
            if emulator is not None:
                emulator.close()
            if self._thread is not None:
                self._thread.join(30)
                self._thread = None
        finally:
            try:
                if bridge is not None:
                    bridge.stop()
            finally:
                try:
                    self.broker.stop()
                finally:
                    if plant is not None:
                        plant.close()

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
