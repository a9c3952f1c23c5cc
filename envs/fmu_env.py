"""``twinfactory/Fmu-v0``: any FMU as a Gymnasium environment.

    env = gymnasium.make("twinfactory/Fmu-v0", fmu="Boiler.fmu", step_size=1.0,
                         inputs={"valve": (0.0, 1.0)}, outputs=["T", "p"],
                         reward=lambda obs, action, info: -abs(obs[0] - 80.0))

## Spaces

- action: every variable of causality input, in model-description order; ``inputs`` picks a
  list of names, or maps name → (low, high).
- observation: every variable of causality output; ``outputs`` picks a list of names.

Real inputs form a ``Box`` bounded by the model description's min/max (or the bounds given
in ``inputs``); an input with no bounds from either is an error, never an infinite Box.
Integer inputs are ``Discrete(max - min + 1, start=min)``, Boolean ones ``Discrete(2)``; an
action of only discrete inputs is a ``MultiDiscrete``, a mix of kinds a ``Dict`` keyed by name.
Observations are a float64 ``Box`` bounded by the outputs' min/max where declared. An FMU
without inputs steps with an empty action.

## Episodes

``reset`` returns the FMU to its state after initialisation (snapshot → fmiReset → new
instance, see :class:`envs.fmu.FmuUnit`), applying ``start_values`` and, when given,
parameters drawn by ``randomize`` from the env's seeded generator: name → (low, high) for a
uniform draw, or name → callable(rng) → value. ``reset(options={"start_values": {...}})``
overrides start values for one episode. ``horizon`` (seconds) truncates an episode; the
registered env has no step limit of its own. ``info["time"]`` is the simulation time after
the step, computed as start + steps × step_size exactly (no float drift).

## Actions

A NaN, infinite or out-of-bounds action raises ValueError and changes nothing, unless
``clip_actions=True`` (then finite actions are clipped to the bounds). ``reward`` is a
callable (observation, action, info) → float; without one the reward is 0.

Version history: v0 — first version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.fmu import FmuUnit, FmuWorker

RewardFunction = Callable[[np.ndarray, Any, dict], float]


class FmuEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        fmu: str | Path,
        step_size: float,
        *,
        inputs: Sequence[str] | Mapping[str, tuple[float, float]] | None = None,
        outputs: Sequence[str] | None = None,
        start_values: Mapping[str, float | int | bool] | None = None,
        randomize: Mapping[str, tuple[float, float] | Callable] | None = None,
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
        factory = FmuWorker if isolated else FmuUnit
        self.unit = factory(
            fmu,
            start_values=self.start_values,
            interface=interface,
            solver=solver,
            solver_step=solver_step,
        )
        try:
            for name in self.randomize:
                self.unit.variable(name)
            self._configure_inputs(inputs)
            self._configure_outputs(outputs)
        except BaseException:
            self.unit.close()
            raise
        self._steps = 0
        self._set_start(self.unit.time)

    # -- spaces -------------------------------------------------------------------
    def _configure_inputs(self, inputs) -> None:
        unit = self.unit
        if inputs is None:
            names, bounds = unit.names("input"), {}
        elif isinstance(inputs, Mapping):
            names, bounds = list(inputs), {n: tuple(b) for n, b in inputs.items()}
        else:
            names, bounds = list(inputs), {}
        self.input_names = names
        self._input_vars = [unit.variable(n) for n in names]
        for variable in self._input_vars:
            if variable.causality not in ("input", "parameter") or (
                variable.causality == "parameter" and variable.variability != "tunable"
            ):
                raise ValueError(
                    f"'{variable.name}' has causality {variable.causality}"
                    f" ({variable.variability}); actions drive inputs or tunable "
                    "parameters"
                )
        lows, highs = [], []
        for variable in self._input_vars:
            low, high = bounds.get(variable.name, (variable.min, variable.max))
            if variable.kind == "Boolean":
                low, high = 0, 1
            if low is None or high is None or not np.isfinite([low, high]).all():
                raise ValueError(
                    f"input '{variable.name}' has no finite min/max in the model description; "
                    f"give its bounds: inputs={{'{variable.name}': (low, high), ...}}"
                )
            if (
                (variable.min is not None and low < variable.min)
                or (variable.max is not None and high > variable.max)
                or low > high
            ):
                raise ValueError(
                    f"bounds ({low}, {high}) for '{variable.name}' must lie inside its range "
                    f"[{variable.min}, {variable.max}] with low <= high"
                )
            lows.append(low)
            highs.append(high)
        kinds = {v.kind for v in self._input_vars}
        self._all_real = kinds <= {"Real"}
        if self._all_real:
            self.action_space = spaces.Box(
                np.array(lows, dtype=np.float64),
                np.array(highs, dtype=np.float64),
                dtype=np.float64,
            )
        elif "Real" not in kinds:
            self.action_space = spaces.MultiDiscrete(
                np.array(highs, dtype=np.int64) - np.array(lows, dtype=np.int64) + 1,
                start=np.array(lows, dtype=np.int64),
            )
        else:
            members = {}
            for variable, low, high in zip(self._input_vars, lows, highs, strict=True):
                members[variable.name] = (
                    spaces.Box(low, high, shape=(1,), dtype=np.float64)
                    if variable.kind == "Real"
                    else spaces.Discrete(int(high) - int(low) + 1, start=int(low))
                )
            self.action_space = spaces.Dict(members)
        self._low = np.array(lows, dtype=np.float64)
        self._high = np.array(highs, dtype=np.float64)
        self._low_list, self._high_list = self._low.tolist(), self._high.tolist()
        self._n_inputs = len(lows)
        self._dict_action = isinstance(self.action_space, spaces.Dict)

    def _configure_outputs(self, outputs) -> None:
        unit = self.unit
        self.output_names = unit.names("output") if outputs is None else list(outputs)
        variables = [unit.variable(n) for n in self.output_names]
        low = np.array([-np.inf if v.min is None else v.min for v in variables], dtype=np.float64)
        high = np.array([np.inf if v.max is None else v.max for v in variables], dtype=np.float64)
        self.observation_space = spaces.Box(low, high, dtype=np.float64)
        real_outputs = all(v.kind == "Real" for v in variables)
        real_inputs = all(v.kind == "Real" and v.causality == "input" for v in self._input_vars)
        self._io = (
            unit.real_io(self.input_names, self.output_names)
            if real_inputs and real_outputs
            else None
        )

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

    def _action_values(self, action) -> np.ndarray:
        if self._dict_action:
            flat = [
                np.asarray(action[n], dtype=np.float64).reshape(-1)[0] for n in self.input_names
            ]
            values = np.array(flat, dtype=np.float64)
        else:
            values = np.asarray(action, dtype=np.float64)
            if values.ndim != 1:
                values = values.reshape(-1)
        if values.shape[0] != self._n_inputs:
            raise ValueError(
                f"action has {values.size} values; this env's action has "
                f"{self._n_inputs}: {self.input_names}"
            )
        # plain floats beat numpy on a handful of values; NaN fails every comparison
        for value, low, high in zip(values.tolist(), self._low_list, self._high_list, strict=True):
            if not low <= value <= high:
                return self._out_of_bounds(values)
        return values

    def _out_of_bounds(self, values: np.ndarray) -> np.ndarray:
        finite = np.isfinite(values)
        if not finite.all():
            bad = self.input_names[int(np.flatnonzero(~finite)[0])]
            raise ValueError(f"action value for '{bad}' is not finite; nothing was changed")
        if self.clip_actions:
            return np.clip(values, self._low, self._high)
        i = int(np.flatnonzero((values < self._low) | (values > self._high))[0])
        raise ValueError(
            f"action value {values[i]} for '{self.input_names[i]}' is outside "
            f"[{self._low[i]}, {self._high[i]}]; nothing was changed (pass "
            "clip_actions=True to clip instead)"
        )

    def _observe(self) -> np.ndarray:
        if self._io is not None:
            return self._io.read()
        return np.array([float(self.unit.get(n)) for n in self.output_names], dtype=np.float64)

    # -- gymnasium API ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
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

    def step(self, action):
        values = self._action_values(action)
        now = self.time
        end = self._time_at(self._steps + 1)
        if self._io is not None:
            observation = self._io.exchange(values, end - now, now, checked=True)
        else:
            self.unit.set(
                {
                    v.name: (
                        bool(x)
                        if v.kind == "Boolean"
                        else int(x)
                        if v.kind == "Integer"
                        else float(x)
                    )
                    for v, x in zip(self._input_vars, values, strict=True)
                }
            )
            self.unit.step(end - now, time=now)
            observation = self._observe()
        self._steps += 1
        info = {"time": end}
        reward = 0.0
        if self.reward_function is not None:
            reward = float(self.reward_function(observation, action, info))
        truncated = self.horizon is not None and end >= (
            self._start_float + self.horizon - 1e-9 * self.step_size
        )
        return observation, reward, False, truncated, info

    def close(self) -> None:
        unit = getattr(self, "unit", None)
        if unit is not None:
            unit.close()
