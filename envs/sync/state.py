"""Writing an FMU's continuous states through FMI state serialisation.

Why serialisation: the states the twin must pull toward the plant (spindle temperature, tool
wear) are FMU *outputs*. FMI 2.0 forbids ``fmi2SetReal`` on outputs and locals, and the
shipped runtime enforces it (``fmus/runtime/fmu_runtime.c`` rejects the call and changes
nothing). Fixed parameters such as ``initial_spindle_temperature`` only act at initialisation,
so they cannot carry a nudge either. What the FMI does offer is ``fmi2GetFMUstate`` /
``fmi2SerializeFMUstate`` / ``fmi2DeSerializeFMUstate`` / ``fmi2SetFMUstate``; the shipped FMUs
declare ``canSerializeFMUstate="true"`` and document their byte image (``fmu_runtime.h``):

- a header ``{char magic[4] = "TFST"; unsigned format_version = 1; unsigned state_size;
  char guid[64]}`` (76 bytes), then
- ``ModelState {double time; int phase; int outputs_stale; double r[N_REALS]; ...}``, where
  ``r`` holds every Real variable in model-description order, states included.

:class:`StateEditor` snapshots the unit, patches the chosen ``r`` entries in the serialised
image, sets ``outputs_stale = 1`` so that derived outputs (hazard, vibration, defect
probability) are recomputed from the new state, deserialises and restores. It verifies the
layout once at construction, by reading every Real variable back from the image and comparing
it with ``FmuUnit.get``; an FMU with another layout gets a clear error instead of a corrupted
state. Values are checked against the variable's [min, max] and clipped into it only when the
caller asks (``clip=True``), as the nudge rule does for a wear that must not go negative.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

from envs.fmu import FmuUnit

HEADER = struct.Struct("=4sII64s")
MAGIC = b"TFST"
FORMAT_VERSION = 1
_REALS_OFFSET = 16  # double time; int phase; int outputs_stale
_STALE_OFFSET = 12


SYNCED_KINDS = ("temperature", "wear")
"""The signal kinds whose FMU states the twin is pulled toward the plant on (spindle / joint
temperature, tool / gripper wear): what :class:`envs.sync.Nudger` and
:class:`envs.sync.KalmanFilter` correct and :class:`envs.sync.TwinTracker` scores."""


class StateLayoutError(RuntimeError):
    """The FMU's serialised state is not the documented twinfactory runtime layout."""


class StateEditor:
    """Overwrite Real variables of one :class:`FmuUnit`, outputs and locals included.

    Call :meth:`write` between steps; the unit's time and every other variable stay as they
    were. Units of the values are the variables' own (see ``fmus/<model>/README.md``).
    """

    def __init__(self, unit: FmuUnit) -> None:
        if not unit.capabilities.can_serialize_state:
            raise StateLayoutError(
                f"{unit.name}: the FMU cannot serialise its state (canSerializeFMUstate=false), "
                "so its states cannot be nudged; synchronise it through its inputs instead"
            )
        self.unit = unit
        reals = [v.name for v in unit.model_description.modelVariables if v.type == "Real"]
        self._index = {name: k for k, name in enumerate(reals)}
        data = self._image()
        magic, version, size, _guid = HEADER.unpack_from(data, 0)
        if magic != MAGIC or version != FORMAT_VERSION or len(data) != HEADER.size + size:
            raise StateLayoutError(
                f"{unit.name}: serialised state is not the twinfactory runtime format "
                f"(magic {magic!r}, version {version}, {len(data)} bytes); nudging supports the "
                "shipped FMUs (fmus/) only"
            )
        if size < _REALS_OFFSET + 8 * len(reals):
            raise StateLayoutError(f"{unit.name}: serialised state too small for its Reals")
        for name in reals:
            stored = self._read(data, name)
            current = float(unit.get(name))
            if not (stored == current or (math.isnan(stored) and math.isnan(current))):
                raise StateLayoutError(
                    f"{unit.name}: serialised '{name}' reads {stored}, the FMU says {current}; "
                    "the state layout is not the documented one, so nudging is disabled"
                )

    def _image(self) -> bytearray:
        snapshot = self.unit.snapshot()
        return bytearray(self.unit.serialize(snapshot))

    def _offset(self, name: str) -> int:
        try:
            return HEADER.size + _REALS_OFFSET + 8 * self._index[name]
        except KeyError:
            raise KeyError(f"{self.unit.name} has no Real variable '{name}'") from None

    def _read(self, data: bytes | bytearray, name: str) -> float:
        return struct.unpack_from("=d", data, self._offset(name))[0]

    def write(self, values: Mapping[str, float], *, clip: bool = False) -> dict[str, float]:
        """Set Real variables (any causality) to ``values``; returns the values written.

        Every value is checked first (finite; within [min, max] unless ``clip``); on error
        nothing changes.
        """
        written: dict[str, float] = {}
        for name, value in values.items():
            self._offset(name)  # unknown names raise before anything changes
            variable = self.unit.variable(name)
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{self.unit.name}.{name}: {value} is not a finite number")
            low = -math.inf if variable.min is None else variable.min
            high = math.inf if variable.max is None else variable.max
            if not low <= value <= high:
                if not clip:
                    raise ValueError(
                        f"{self.unit.name}.{name} = {value} is outside [{low}, {high}]; "
                        "pass clip=True to clip it"
                    )
                value = min(max(value, low), high)
            written[name] = value
        if not written:
            return written
        data = self._image()
        for name, value in written.items():
            struct.pack_into("=d", data, self._offset(name), value)
        struct.pack_into("=i", data, HEADER.size + _STALE_OFFSET, 1)
        snapshot = self.unit.deserialize(bytes(data), self.unit.time)
        self.unit.restore(snapshot)
        return written
