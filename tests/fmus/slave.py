"""A thin test driver over FMPy's bare FMU2Slave that addresses variables by name and records
the FMU's log messages. The shipped FMUs are tested through it, independently of the library's
own FMU layer (envs.fmu), whose log routing it shares."""

from __future__ import annotations

from fmpy import read_model_description
from fmpy.fmi2 import FMU2Slave

from envs.fmu import _logging


class Slave:
    """One co-simulation instance of an extracted FMU."""

    def __init__(self, unzipdir: str, instance_name: str = "instance") -> None:
        self.description = read_model_description(unzipdir)
        self.variables = {v.name: v for v in self.description.modelVariables}
        self.messages: list[str] = []
        self._callbacks, self._log_key = _logging.fmi2_callbacks(self._log)
        self.fmu = FMU2Slave(
            guid=self.description.guid,
            unzipDirectory=unzipdir,
            modelIdentifier=self.description.coSimulation.modelIdentifier,
            instanceName=instance_name,
        )
        self.fmu.instantiate(callbacks=self._callbacks, loggingOn=True)
        self.time = 0.0

    def _log(self, status: int, text: str) -> None:
        self.messages.append(text)

    def initialize(self, **values: float) -> Slave:
        self.fmu.setupExperiment(startTime=0.0)
        self.fmu.enterInitializationMode()
        if values:
            self.set(**values)
        self.fmu.exitInitializationMode()
        self.time = 0.0
        return self

    def set(self, **values: float) -> None:
        """Set variables by name in one call per type (validated as a whole by the FMU)."""
        by_type: dict[str, tuple[list[int], list]] = {}
        for name, value in values.items():
            variable = self.variables[name]
            refs, vals = by_type.setdefault(variable.type, ([], []))
            refs.append(variable.valueReference)
            vals.append(value)
        for type_name, (refs, vals) in by_type.items():
            if type_name == "Real":
                self.fmu.setReal(refs, [float(v) for v in vals])
            elif type_name == "Integer":
                self.fmu.setInteger(refs, [int(v) for v in vals])
            else:
                self.fmu.setBoolean(refs, [bool(v) for v in vals])

    def get(self, name: str) -> float:
        variable = self.variables[name]
        getter = {
            "Real": self.fmu.getReal,
            "Integer": self.fmu.getInteger,
            "Boolean": self.fmu.getBoolean,
        }[variable.type]
        return getter([variable.valueReference])[0]

    def outputs(self) -> dict[str, float]:
        return {
            name: self.get(name) for name, v in self.variables.items() if v.causality == "output"
        }

    def step(self, size: float, count: int = 1) -> None:
        for _ in range(count):
            self.fmu.doStep(currentCommunicationPoint=self.time, communicationStepSize=size)
            self.time += size

    def close(self) -> None:
        self.fmu.freeInstance()
        _logging.forget(self._log_key)
