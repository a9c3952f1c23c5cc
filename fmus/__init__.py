"""The shipped factory-equipment models: FMI 2.0 co-simulation FMUs written in C.

Each model lives in a folder of its own (``CncMill/``, ``Conveyor/``,
``RobotCell/``) with its ``modelDescription.xml``, ``model.c`` and a README
that documents every variable, the equations and the sources of the parameter
values. All models share one small FMI runtime in ``runtime/``.

>>> import fmus
>>> fmus.names()
['CncMill', 'Conveyor', 'RobotCell']
>>> fmu_file = fmus.path("CncMill")  # builds on first use, then cached

Building needs a C compiler (``cc`` or ``$CC``); archives are cached under
``~/.cache/twinfactory/fmus`` (``$TWINFACTORY_FMU_CACHE`` overrides it).
"""

from fmus._build import (
    CompilerNotFoundError,
    FmuBuildError,
    UnknownModelError,
    build,
    cache_dir,
    find_compiler,
    model_dir,
    names,
    path,
    source_hash,
)

__all__ = [
    "CompilerNotFoundError",
    "FmuBuildError",
    "UnknownModelError",
    "build",
    "cache_dir",
    "find_compiler",
    "model_dir",
    "names",
    "path",
    "source_hash",
]
