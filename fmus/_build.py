"""Build the shipped models into FMI 2.0 ``.fmu`` archives, cached by source hash.

An archive holds ``modelDescription.xml``, the platform binary under
``binaries/<platform>/``, every source file needed to rebuild it under
``sources/`` (listed in the model description's ``SourceFiles`` element, the
FMI 2.0 build configuration, so FMPy's ``build_platform_binary`` can rebuild
it elsewhere) and the model's documentation.

Archives are cached under ``$TWINFACTORY_FMU_CACHE`` (default
``~/.cache/twinfactory/fmus``) by a hash of everything that goes into them.
Concurrent builders of the same model wait on a file lock and the archive
appears atomically (temporary file + rename), so several processes may call
:func:`fmus.path` at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from filelock import FileLock

from fmus._codegen import write_header

MODELS_DIR = Path(__file__).resolve().parent
RUNTIME_DIR = MODELS_DIR / "runtime"
_FMI_HEADERS = ("fmi2Functions.h", "fmi2FunctionTypes.h", "fmi2TypesPlatform.h")
_COMPILE_FLAGS = ("-shared", "-fPIC", "-O2", "-std=c99", "-fvisibility=hidden", "-Wall")
# A fixed timestamp keeps archives byte-identical for identical sources.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class FmuBuildError(RuntimeError):
    """A shipped model could not be built."""


class CompilerNotFoundError(FmuBuildError):
    """No C compiler is available to build the shipped models."""


class UnknownModelError(KeyError):
    """The name is not one of the shipped models."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def names() -> list[str]:
    """Names of the shipped models, e.g. ``["CncMill", "Conveyor", "RobotCell"]``."""
    return sorted(
        entry.name
        for entry in MODELS_DIR.iterdir()
        if entry.is_dir() and (entry / "modelDescription.xml").is_file()
    )


def model_dir(name: str) -> Path:
    """The source folder of a shipped model."""
    if name not in names():
        raise UnknownModelError(
            f"'{name}' is not a shipped model; choose one of {', '.join(names())}"
        )
    return MODELS_DIR / name


def cache_dir() -> Path:
    """Folder holding built archives (``$TWINFACTORY_FMU_CACHE`` overrides it)."""
    configured = os.environ.get("TWINFACTORY_FMU_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "twinfactory" / "fmus"


def _fmi_header_dir() -> Path:
    import fmpy

    return Path(fmpy.__file__).resolve().parent / "c-code"


def _inputs(name: str) -> dict[str, Path]:
    """Archive-relative name -> file, for everything an archive is made from."""
    folder = model_dir(name)
    files = {"modelDescription.xml": folder / "modelDescription.xml"}
    files["documentation/README.md"] = folder / "README.md"
    files["sources/model.c"] = folder / "model.c"
    for source in sorted(RUNTIME_DIR.glob("*.[ch]")):
        files[f"sources/{source.name}"] = source
    for header in _FMI_HEADERS:
        files[f"sources/{header}"] = _fmi_header_dir() / header
    return files


def source_hash(name: str) -> str:
    """SHA-256 over a model's sources, the runtime, the FMI headers and the build recipe."""
    digest = hashlib.sha256()
    recipe = [Path(__file__), Path(__file__).with_name("_codegen.py")]
    for label, file in sorted(_inputs(name).items()) + [(p.name, p) for p in recipe]:
        digest.update(label.encode())
        digest.update(file.read_bytes())
    digest.update(" ".join(_COMPILE_FLAGS).encode())
    digest.update(_platform_folder().encode())
    return digest.hexdigest()


def _platform_folder() -> str:
    import fmpy

    return fmpy.platform


def find_compiler() -> str:
    """Path of the C compiler (``$CC`` or ``cc``); CompilerNotFoundError says what to install."""
    requested = os.environ.get("CC", "cc")
    found = shutil.which(requested)
    if found is None:
        raise CompilerNotFoundError(
            f"No C compiler found: '{requested}' is not on PATH, and the shipped FMUs are built "
            "from C sources. Install one (Debian/Ubuntu: 'apt-get install gcc'; Fedora: "
            "'dnf install gcc'; macOS: 'xcode-select --install') or set CC to a compiler's path."
        )
    return found


def _compile(name: str, sources: Path, binary: Path) -> None:
    if sys.platform == "win32":
        raise FmuBuildError(
            "Building the shipped FMUs on Windows is not supported by this builder; build the "
            "source FMU with fmpy.build.build_platform_binary (needs CMake and MSVC)."
        )
    command = [
        find_compiler(),
        *_COMPILE_FLAGS,
        f"-I{sources}",
        str(sources / "model.c"),
        str(sources / "fmu_runtime.c"),
        "-o",
        str(binary),
        "-lm",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise FmuBuildError(
            f"Compiling {name} failed ({' '.join(command)}):\n{result.stderr.strip()}"
        )


def _write_archive(staging: Path, destination: Path) -> None:
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in staging.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(file.relative_to(staging).as_posix(), _ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, file.read_bytes())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build(name: str, destination: Path) -> Path:
    """Build ``name`` into the archive ``destination`` (no caching, no locking)."""
    with tempfile.TemporaryDirectory(prefix=f"twinfactory-{name}-") as work:
        staging = Path(work) / "fmu"
        for relative, source in _inputs(name).items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        write_header(staging / "modelDescription.xml", staging / "sources" / "model_variables.h")
        import fmpy

        binary_dir = staging / "binaries" / _platform_folder()
        binary_dir.mkdir(parents=True)
        _compile(name, staging / "sources", binary_dir / f"{name}{fmpy.sharedLibraryExtension}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        _write_archive(staging, destination)
    return destination


def path(name: str, *, rebuild: bool = False) -> Path:
    """Path of the built ``.fmu`` of a shipped model, building it if needed.

    The archive is cached by :func:`source_hash`; ``rebuild=True`` builds it
    again even if a cached archive exists. Safe to call from several processes
    at once.
    """
    digest = source_hash(name)
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}-{digest[:16]}.fmu"
    if target.is_file() and not rebuild:
        return target
    with FileLock(str(folder / f".{name}-{digest[:16]}.lock")):
        if target.is_file() and not rebuild:
            return target  # another process built it while we waited
        return build(name, target)
