"""Print the project's dependencies pinned to their declared floors (``name>=x`` -> ``name==x``),
for the minimum-versions test job (``make test-min``): the honest check that the floors in
pyproject.toml are true. Extras named on the command line are included (e.g. ``dev``)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

FLOOR = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][^,;\s]*)")


def floors(requirements: list[str]) -> list[str]:
    pinned = []
    for requirement in requirements:
        match = FLOOR.match(requirement)
        if match is None:
            raise SystemExit(f"pyproject.toml: '{requirement}' declares no '>=' floor")
        name, version = match.groups()
        pinned.append(f"{name}=={version}")
    return pinned


def main() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in sys.argv[1:]:
        requirements += project["optional-dependencies"][extra]
    print("\n".join(floors(requirements)))


if __name__ == "__main__":
    main()
