"""Command line: ``python -m fmus build`` builds every shipped model."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from fmus._build import FmuBuildError, names, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fmus",
        description="Build the shipped FMI 2.0 co-simulation FMUs from their C sources. "
        "Built archives are cached by a hash of their sources, so a second build is instant.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build models (all by default) and print their paths")
    build.add_argument(
        "models", nargs="*", metavar="MODEL", help=f"models to build: {', '.join(names())}"
    )
    build.add_argument("--out", type=Path, help="also copy the built .fmu files into this folder")
    build.add_argument(
        "--rebuild", action="store_true", help="build even if a cached archive exists"
    )
    commands.add_parser("list", help="print the names of the shipped models")
    args = parser.parse_args(argv)

    if args.command == "list":
        print("\n".join(names()))
        return 0
    try:
        for name in args.models or names():
            built = path(name, rebuild=args.rebuild)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                built = Path(shutil.copyfile(built, args.out / f"{name}.fmu"))
            print(f"{name}: {built}")
    except (FmuBuildError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
