"""Print requirement lines taken from pyproject.toml, for the Docker builds (platform/Dockerfile*).

    python pyproject_requirements.py pyproject.toml
        every dependency of [project] (the code location installs them in a layer of their own, so that a change
        to the code alone does not reinstall TensorFlow and Spark)
    python pyproject_requirements.py pyproject.toml --only dagster dagster-webserver dagster-postgres dagster-aws
        just those, each of which must be pinned exactly (`==`): the webserver/daemon image then runs the very
        versions the code location was built with, and the build fails if a pin is missing or loosened.

Standard library only (tomllib, Python 3.11): it runs before anything is installed. Not part of the daily_bids
package; platform/ holds deployment files only.
"""

import argparse
import re
import sys
import tomllib

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"cannot read a package name in {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(pyproject: str, only: list[str] | None = None) -> list[str]:
    with open(pyproject, "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    if not only:
        return list(dependencies)
    wanted = {_name(name) for name in only}
    chosen = [dependency for dependency in dependencies if _name(dependency) in wanted]
    missing = wanted - {_name(dependency) for dependency in chosen}
    if missing:
        raise SystemExit(f"{pyproject} does not depend on {', '.join(sorted(missing))}")
    loose = [dependency for dependency in chosen if not re.search(r"==\s*[0-9][^,;\s]*\s*(;.*)?$", dependency)]
    if loose:
        raise SystemExit(f"{pyproject} must pin these exactly (==): {', '.join(loose)}")
    return chosen


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject")
    parser.add_argument("--only", nargs="+", help="just these packages, each pinned exactly")
    args = parser.parse_args(argv)
    print("\n".join(requirements(args.pyproject, args.only)))


if __name__ == "__main__":
    main(sys.argv[1:])
