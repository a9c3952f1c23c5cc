"""Extract each FMU once per process, find or build its binary, explain load failures.

Extractions are shared and reference-counted: every unit of the same archive uses
one directory, removed when the last unit closes and, at the latest, at interpreter
exit. A directory given instead of an archive is used in place and never removed.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fmpy

from envs.fmu.errors import FmuLoadError


@dataclass
class _Extraction:
    directory: str
    users: int


_lock = threading.Lock()
_extractions: dict[tuple, _Extraction] = {}


def _key(path: Path) -> tuple:
    status = path.stat()
    return (str(path.resolve()), status.st_size, status.st_mtime_ns)


def acquire(fmu: str | os.PathLike) -> tuple[str, tuple | None]:
    """Directory holding the extracted FMU and a key to :func:`release` it with."""
    path = Path(fmu)
    if not path.exists():
        raise FmuLoadError(
            f"{path}: no such file; pass the path of an .fmu file or of an extracted FMU directory"
        )
    if path.is_dir():
        if not (path / "modelDescription.xml").is_file():
            raise FmuLoadError(
                f"{path}: the directory has no modelDescription.xml; it is not an extracted FMU"
            )
        return str(path), None
    if not zipfile.is_zipfile(path):
        raise FmuLoadError(
            f"{path}: not an FMU (an FMU is a ZIP archive with a "
            "modelDescription.xml); re-export it from the modelling tool"
        )
    key = _key(path)
    with _lock:
        entry = _extractions.get(key)
        if entry is None:
            directory = tempfile.mkdtemp(prefix=f"twinfactory-{path.stem}-")
            try:
                with zipfile.ZipFile(path) as archive:
                    if "modelDescription.xml" not in archive.namelist():
                        raise FmuLoadError(
                            f"{path}: the archive has no modelDescription.xml; it is not an FMU"
                        )
                    archive.extractall(directory)
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            entry = _extractions[key] = _Extraction(directory, 0)
        entry.users += 1
        return entry.directory, key


def release(key: tuple | None) -> None:
    """Give back an extraction; the directory goes when its last user does."""
    if key is None:
        return
    with _lock:
        entry = _extractions.get(key)
        if entry is None:
            return
        entry.users -= 1
        if entry.users <= 0:
            del _extractions[key]
            shutil.rmtree(entry.directory, ignore_errors=True)


def extraction_count() -> int:
    """How many extracted FMU directories this process holds now."""
    with _lock:
        return len(_extractions)


@atexit.register
def _remove_all() -> None:
    with _lock:
        for entry in _extractions.values():
            shutil.rmtree(entry.directory, ignore_errors=True)
        _extractions.clear()


def library_path(unzipdir: str, model_description: Any, model_identifier: str) -> Path:
    platform = (
        fmpy.platform_tuple if model_description.fmiVersion.startswith("3") else fmpy.platform
    )
    return (
        Path(unzipdir) / "binaries" / platform / f"{model_identifier}{fmpy.sharedLibraryExtension}"
    )


def ensure_binary(unzipdir: str, model_description: Any, model_identifier: str) -> Path:
    """The FMU's binary for this platform, compiled from the carried sources if it has none."""
    library = library_path(unzipdir, model_description, model_identifier)
    if library.is_file():
        return library
    binaries = Path(unzipdir) / "binaries"
    present = sorted(p.name for p in binaries.iterdir()) if binaries.is_dir() else []
    if not model_description.buildConfigurations:
        raise FmuLoadError(
            f"{model_description.modelName}: no binary for this platform ({library.parent.name}) "
            f"and no sources to build one; the FMU has binaries for {present or 'no platform'}. "
            "Export it for this platform, or as a source FMU."
        )
    _compile_sources(unzipdir, model_description, library)
    return library


def _compile_sources(unzipdir: str, model_description: Any, library: Path) -> None:
    from fmus import find_compiler  # the one place that knows how to find a C compiler

    sources_dir = Path(unzipdir) / "sources"
    headers = Path(fmpy.__file__).resolve().parent / "c-code"
    command = [find_compiler(), "-shared", "-fPIC", "-O2", f"-I{sources_dir}", f"-I{headers}"]
    for configuration in model_description.buildConfigurations:
        for file_set in configuration.sourceFileSets:
            command += [
                f"-D{d.name}={d.value}" if d.value else f"-D{d.name}"
                for d in file_set.preprocessorDefinitions
            ]
            command += [str(sources_dir / name) for name in file_set.sourceFiles]
    library.parent.mkdir(parents=True, exist_ok=True)
    command += ["-o", str(library), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise FmuLoadError(
            f"{model_description.modelName}: has no binary for this platform and building it "
            f"from its sources failed:\n{result.stderr.strip()}"
        )


def explain_load_failure(library: Path, error: Exception) -> FmuLoadError:
    """An error that names what the dynamic loader could not find."""
    missing: list[str] = []
    if shutil.which("ldd"):
        listing = subprocess.run(["ldd", str(library)], capture_output=True, text=True)
        missing = re.findall(r"^\s*(\S+)\s*=>\s*not found", listing.stdout, re.MULTILINE)
    if missing:
        return FmuLoadError(
            f"{library.name} failed to load: it needs {', '.join(missing)}, which this machine "
            "does not have. Install the library, or add the folder that holds it to "
            f"LD_LIBRARY_PATH. (loader: {error})"
        )
    return FmuLoadError(
        f"{library.name} failed to load: {error}. Check that the binary was "
        "built for this platform and that its dependencies are installed."
    )
