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

from envs.fmu import FmuStoppedError, FmuUnit, FmuWorker, Variable
from envs.fmu.variables import Value

ObsType = np.ndarray | dict[str, np.ndarray]
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
            self._configure_inputs(inputs)
            self._configure_outputs(outputs)
        except BaseException:
            self.unit.close()
            raise
        self._steps = 0
        self._set_start(self.unit.time)

    # -- spaces -------------------------------------------------------------------
    def _configure_inputs(
        self, inputs: Sequence[str] | Mapping[str, tuple[float, float]] | None
    ) -> None:
        unit = self.unit
        bounds: dict[str, tuple[float, float]] = {}
        if inputs is None:
            names = unit.names("input")
        elif isinstance(inputs, Mapping):
            names, bounds = list(inputs), {n: (b[0], b[1]) for n, b in inputs.items()}
        else:
            names = list(inputs)
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
            _supported_array(variable, "input")
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
        arrays = any(v.is_array for v in self._input_vars)
        self.action_space: spaces.Space[Any]
        if arrays and len(self._input_vars) == 1:
            shape = self._input_vars[0].shape
            self.action_space = spaces.Box(lows[0], highs[0], shape=shape, dtype=np.float64)
        elif kinds <= {"Real"} and not arrays:
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
            members: dict[str, spaces.Space[Any]] = {}
            for variable, low, high in zip(self._input_vars, lows, highs, strict=True):
                members[variable.name] = (
                    spaces.Box(low, high, shape=variable.shape or (1,), dtype=np.float64)
                    if variable.kind == "Real"
                    else spaces.Discrete(int(high) - int(low) + 1, start=int(low))
                )
            self.action_space = spaces.Dict(members)
        sizes = [v.size for v in self._input_vars]
        self._low = np.repeat(np.array(lows, dtype=np.float64), sizes)
        self._high = np.repeat(np.array(highs, dtype=np.float64), sizes)
        self._low_list, self._high_list = self._low.tolist(), self._high.tolist()
        self._n_inputs = len(self._low)
        self._input_slices = _slices(self._input_vars)
        self._element_names = _element_names(self._input_vars)
        self._dict_action = isinstance(self.action_space, spaces.Dict)

    def _configure_outputs(self, outputs: Sequence[str] | None) -> None:
        unit = self.unit
        self.output_names = unit.names("output") if outputs is None else list(outputs)
        variables = [unit.variable(n) for n in self.output_names]
        for variable in variables:
            _supported_array(variable, "output")
        self._output_vars = variables
        self._output_slices = _slices(variables)
        self._single_array = len(variables) == 1 and variables[0].is_array
        self._dict_observation = not self._single_array and any(v.is_array for v in variables)
        self.observation_space: spaces.Space[Any]
        if self._single_array or self._dict_observation:
            boxes: dict[str, spaces.Space[Any]] = {
                v.name: _box(v, v.shape or (1,)) for v in variables
            }
            self.observation_space = (
                boxes[variables[0].name] if self._single_array else spaces.Dict(boxes)
            )
        else:
            low = np.array([_bound(v.min, -np.inf) for v in variables], dtype=np.float64)
            high = np.array([_bound(v.max, np.inf) for v in variables], dtype=np.float64)
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

    def _action_values(self, action: ActType) -> np.ndarray:
        if self._dict_action:
            values = np.concatenate(
                [np.asarray(action[n], dtype=np.float64).reshape(-1) for n in self.input_names]
            )
        else:
            values = np.asarray(action, dtype=np.float64)
            if values.ndim != 1:
                values = values.reshape(-1)
        if values.shape[0] != self._n_inputs:
            raise ValueError(
                f"action has {values.size} values; this env's action has "
                f"{self._n_inputs}: {self._element_names}"
            )
        # plain floats beat numpy on a handful of values; NaN fails every comparison
        for value, low, high in zip(values.tolist(), self._low_list, self._high_list, strict=True):
            if not low <= value <= high:
                return self._out_of_bounds(values)
        return values

    def _out_of_bounds(self, values: np.ndarray) -> np.ndarray:
        finite = np.isfinite(values)
        if not finite.all():
            bad = self._element_names[int(np.flatnonzero(~finite)[0])]
            raise ValueError(f"action value for '{bad}' is not finite; nothing was changed")
        if self.clip_actions:
            return np.clip(values, self._low, self._high)
        i = int(np.flatnonzero((values < self._low) | (values > self._high))[0])
        raise ValueError(
            f"action value {values[i]} for '{self._element_names[i]}' is outside "
            f"[{self._low[i]}, {self._high[i]}]; nothing was changed (pass "
            "clip_actions=True to clip instead)"
        )

    def _observe(self) -> ObsType:
        if self._io is not None:
            flat = self._io.read()
        elif not self._output_vars or all(not v.is_array for v in self._output_vars):
            flat = np.array([float(self.unit.get(n)) for n in self.output_names], dtype=np.float64)
        else:
            flat = np.concatenate(
                [
                    np.asarray(self.unit.get(n), dtype=np.float64).reshape(-1)
                    for n in self.output_names
                ]
            )
        return self._shape_observation(flat)

    def _shape_observation(self, flat: np.ndarray) -> ObsType:
        if self._single_array:
            return flat.reshape(self._output_vars[0].shape)
        if self._dict_observation:
            return {
                v.name: flat[start:stop].reshape(v.shape or (1,))
                for v, (start, stop) in zip(self._output_vars, self._output_slices, strict=True)
            }
        return flat

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
        values = self._action_values(action)
        now = self.time
        end = self._time_at(self._steps + 1)
        if self._io is not None:
            observation = self._shape_observation(
                self._io.exchange(values, end - now, now, checked=True)
            )
        else:
            self.unit.set(
                {
                    v.name: _typed(v, values[start:stop])
                    for v, (start, stop) in zip(self._input_vars, self._input_slices, strict=True)
                }
            )
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


def _supported_array(variable: Variable, role: str) -> None:
    if variable.is_array and variable.kind != "Real":
        raise ValueError(
            f"{role} '{variable.name}' is an FMI 3 {variable.type} array of shape "
            f"{variable.shape}; array variables are supported for Real (Float64/Float32) "
            "variables only, not yet for Integer or Boolean ones"
        )


def _slices(variables: Sequence[Variable]) -> list[tuple[int, int]]:
    """(start, stop) of each variable's values in the flat vector."""
    bounds, start = [], 0
    for variable in variables:
        bounds.append((start, start + variable.size))
        start += variable.size
    return bounds


def _element_names(variables: Sequence[Variable]) -> list[str]:
    names = []
    for variable in variables:
        if not variable.is_array:
            names.append(variable.name)
            continue
        for index in np.ndindex(*variable.shape):
            names.append(f"{variable.name}{[int(i) for i in index]}")
    return names


def _box(variable: Variable, shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(
        _bound(variable.min, -np.inf), _bound(variable.max, np.inf), shape=shape, dtype=np.float64
    )


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _typed(variable: Variable, values: np.ndarray) -> Any:
    """Values of one variable from the flat action vector, of its kind (and shape)."""
    if variable.is_array:
        return values.reshape(variable.shape)
    value = values[0]
    if variable.kind == "Boolean":
        return bool(value)
    if variable.kind == "Integer":
        return int(value)
    return float(value)
