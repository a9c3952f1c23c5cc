"""``twinfactory/Fmu-v0``: any FMU as a Gymnasium environment.

    env = gymnasium.make("twinfactory/Fmu-v0", fmu="Boiler.fmu", step_size=1.0,
                         inputs={"valve": (0.0, 1.0)}, outputs=["T", "p"],
                         reward=lambda obs, action, info: -abs(obs[0] - 80.0))

The spaces, episodes, actions and version history are documented on :class:`FmuEnv`
(``help(env.unwrapped)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.fmu import FmuStoppedError, FmuUnit, FmuWorker
from envs.fmu.variables import Value
from envs.fmu_spaces import ObsType, bind_inputs, bind_outputs

ActType = Any
RewardFunction = Callable[[Any, Any, dict[str, Any]], float]


class FmuEnv(gym.Env[ObsType, ActType]):
    """Any FMU (FMI 2.0 / 3.0, co-simulation or model exchange) as a Gymnasium environment.

    ## Description

    Each step holds the action on the FMU's inputs for ``step_size`` seconds and observes its
    outputs. The FMU is loaded once (:class:`envs.fmu.FmuUnit`, or :class:`envs.fmu.FmuWorker`
    in a child process with ``isolated=True``) and reset cheaply between episodes.

    ## Action Space

    Every variable of causality input, in model-description order; ``inputs`` picks a list of
    names (inputs or tunable parameters), or maps name → (low, high).

    Real inputs form a float64 ``Box`` bounded by the model description's min/max (or the
    bounds given in ``inputs``); an input with no bounds from either is an error, never an
    infinite Box. Integer inputs are ``Discrete(max - min + 1, start=min)``, Boolean ones
    ``Discrete(2)``; an action of only discrete inputs is a ``MultiDiscrete``, a mix of kinds
    a ``Dict`` keyed by name. An FMU without inputs steps with an empty action.

    An FMI 3 array input (``<Float64 name="u"><Dimension .../></Float64>``) is a ``Box`` of
    its shape (sizes from the Dimension's ``start`` or from the structural parameter it
    references, as set by ``start_values``): the action space itself when it is the only
    input, else a member of a ``Dict``. Integer and Boolean arrays are not supported yet.

    ## Observation Space

    Every variable of causality output; ``outputs`` picks a list of names. A float64 ``Box``
    with one entry per output, bounded by the outputs' min/max where declared. An array output
    is a ``Box`` of its shape: the observation space itself when it is the only output, else
    a member of a ``Dict`` keyed by name (scalar outputs there have shape ``(1,)``).

    ## Rewards

    ``reward`` is a callable (observation, action, info) → float; without one the reward is 0.

    ## Starting State

    ``reset`` returns the FMU to its state after initialisation (snapshot → fmiReset → new
    instance, see :class:`envs.fmu.FmuUnit`), applying ``start_values`` and, when given,
    parameters drawn by ``randomize`` from the env's seeded generator: name → (low, high) for
    a uniform draw, or name → callable(rng) → value. ``reset(options={"start_values":
    {...}})`` overrides start values for one episode. ``info["parameters"]`` holds the
    values applied, ``info["reset"]`` the rung used.

    ## Episode End

    - Termination: the FMU asks to end the simulation (FMI 2: ``fmi2DoStep`` returns
      ``fmi2Discard`` with ``fmi2Terminated``; FMI 3: ``terminateSimulation``), as FMPy's
      ``simulate_fmu`` stops. ``info["stop_request"]`` holds the
      :class:`envs.fmu.StopRequest` and ``info["time"]`` the time the FMU reached. A step
      after that raises :class:`envs.fmu.FmuStoppedError`; reset first. A discard without
      that request is an error (:class:`envs.fmu.FmuDiscardError`), not an episode end.
    - Truncation: ``horizon`` (seconds) truncates an episode; the registered env has no step
      limit of its own.

    ``info["time"]`` is the simulation time after the step, computed as start + steps ×
    step_size exactly (no float drift).

    ## Actions out of bounds

    A NaN, infinite or out-of-bounds action raises ValueError and changes nothing, unless
    ``clip_actions=True`` (then finite actions are clipped to the bounds).

    ## Arguments

    ``fmu`` (path), ``step_size`` (s), ``inputs``, ``outputs``, ``start_values``,
    ``randomize``, ``horizon`` (s), ``reward``, ``clip_actions``, ``isolated``, ``interface``
    ("auto", "co_simulation", "model_exchange"), ``solver`` ("cvode", "euler") and
    ``solver_step`` (s) for model exchange. ``render_mode`` is accepted and ignored.

    ## Version History

    - v0: first version. Later additions that change nothing for FMUs without them:
      termination when the FMU asks to stop, FMI 3 array inputs and outputs.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        fmu: str | Path,
        step_size: float,
        *,
        inputs: Sequence[str] | Mapping[str, tuple[float, float]] | None = None,
        outputs: Sequence[str] | None = None,
        start_values: Mapping[str, Value] | None = None,
        randomize: Mapping[str, tuple[float, float] | Callable[[np.random.Generator], Any]]
        | None = None,
        horizon: float | None = None,
        reward: RewardFunction | None = None,
        clip_actions: bool = False,
        isolated: bool = False,
        interface: str = "auto",
        solver: str = "cvode",
        solver_step: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        # These envs do not render. A render_mode is accepted (stable-baselines3's
        # make_vec_env passes "rgb_array") and ignored: render() stays unavailable.
        self.render_mode = None
        if not (isinstance(step_size, (int, float)) and step_size > 0 and np.isfinite(step_size)):
            raise ValueError(f"step_size must be a positive number of seconds, not {step_size!r}")
        if horizon is not None and not horizon >= step_size:
            raise ValueError(f"horizon {horizon} s must be at least one step ({step_size} s)")
        if reward is not None and not callable(reward):
            raise TypeError("reward must be a callable (observation, action, info) -> float")
        self.step_size = float(step_size)
        # exact clock: time_k = (start_num * step_den + k * step_num * start_den) / common_den in
        # integers with one correctly rounded division: no drift, no Fractions per step
        step = Fraction(str(step_size))
        self._step_num, self._step_den = step.numerator, step.denominator
        self.horizon = horizon
        self.reward_function = reward
        self.clip_actions = clip_actions
        self.start_values = dict(start_values or {})
        self.randomize = dict(randomize or {})
        for name, spec in self.randomize.items():
            if not callable(spec) and not (
                isinstance(spec, tuple | list) and len(spec) == 2 and spec[0] <= spec[1]
            ):
                raise ValueError(
                    f"randomize['{name}'] must be (low, high) with low <= high or "
                    f"a callable(rng) -> value, not {spec!r}"
                )
        factory: type[FmuUnit] | type[FmuWorker] = FmuWorker if isolated else FmuUnit
        self.unit: FmuUnit | FmuWorker = factory(
            fmu,
            start_values=self.start_values,
            interface=interface,
            solver=solver,
            solver_step=solver_step,
        )
        try:
            for name in self.randomize:
                self.unit.variable(name)
            self._actions = bind_inputs(self.unit, inputs)
            self._observations = bind_outputs(self.unit, outputs)
            self.input_names = list(self._actions.names)
            self.output_names = list(self._observations.names)
            self._io = (
                self.unit.real_io(self.input_names, self.output_names)
                if self._actions.real_inputs and self._observations.real_outputs
                else None
            )
        except BaseException:
            self.unit.close()
            raise
        self.action_space: spaces.Space[Any] = self._actions.space
        self.observation_space: spaces.Space[Any] = self._observations.space
        self._steps = 0
        self._set_start(self.unit.time)

    # -- helpers --------------------------------------------------------------------
    def _set_start(self, start: float) -> None:
        exact = Fraction(str(start))
        self._start_float = float(exact)
        self._start_scaled = exact.numerator * self._step_den
        self._increment = self._step_num * exact.denominator
        self._common_den = exact.denominator * self._step_den

    def _time_at(self, steps: int) -> float:
        return (self._start_scaled + steps * self._increment) / self._common_den

    @property
    def time(self) -> float:
        """Simulation time after the steps taken in this episode, in seconds."""
        return self._time_at(self._steps)

    def _observe(self) -> ObsType:
        flat = self._io.read() if self._io is not None else self._observations.read(self.unit)
        return self._observations.shape(flat)

    # -- gymnasium API ----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Start an episode: the FMU back to its state after initialisation (see the class
        docstring, "Starting State"); returns the first observation and info."""
        super().reset(seed=seed)
        values = dict((options or {}).get("start_values", {}))
        for name, spec in self.randomize.items():
            values[name] = (
                spec(self.np_random)
                if callable(spec)
                else float(self.np_random.uniform(spec[0], spec[1]))
            )
        self.unit.reset(values)
        self._steps = 0
        if self.unit.time != self._start_float:
            self._set_start(self.unit.time)
        return self._observe(), {
            "time": self.time,
            "reset": self.unit.last_reset,
            "parameters": values,
        }

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Hold ``action`` on the inputs for one ``step_size``; returns observation, reward,
        terminated (the FMU asked to stop), truncated (``horizon`` reached) and info."""
        if self.unit.stop_request is not None:
            raise FmuStoppedError(
                f"{self.unit.stop_request.describe()}; the episode has ended (terminated). "
                "Call reset() to start a new one."
            )
        values = self._actions.flat(action, clip=self.clip_actions)
        now = self.time
        end = self._time_at(self._steps + 1)
        if self._io is not None:
            observation = self._observations.shape(
                self._io.exchange(values, end - now, now, checked=True)
            )
        else:
            self.unit.set(self._actions.unit_values(values))
            self.unit.step(end - now, time=now)
            observation = self._observe()
        self._steps += 1
        info: dict[str, Any] = {"time": end}
        stop = self.unit.stop_request
        if stop is not None:
            info["time"] = stop.time
            info["stop_request"] = stop
        reward = 0.0
        if self.reward_function is not None:
            reward = float(self.reward_function(observation, action, info))
        truncated = self.horizon is not None and end >= (
            self._start_float + self.horizon - 1e-9 * self.step_size
        )
        return observation, reward, stop is not None, truncated, info

    def close(self) -> None:
        """Free the FMU (and stop its worker process)."""
        unit = getattr(self, "unit", None)
        if unit is not None:
            unit.close()
