"""The package layout is the architecture: a domain package imports only the layers below it, and nothing imports in
a cycle. Read from the source (every import statement, lazy ones included), so a test run needs no import at all."""

import ast
from collections import defaultdict
from pathlib import Path

from support.deployment import REPO_ROOT

PACKAGE = REPO_ROOT / "daily_bids"
# Each domain package (or foundation module) by layer: a module may import its own package and lower layers only.
LAYERS: dict[str, int] = {
    "schema": 0,
    "charts": 0,
    "settings": 0,
    "currency": 0,  # the account currency's billable unit and decimals, for settings, bids and displays
    "progress": 0,  # progress lines (rows done, rate, time left) for any long step
    "memory": 0,  # a finished step's memory handed back (every job's step hooks)
    "keyword_index": 0,  # joins on keyword IDs, for features, models, bids and scoring
    "storage": 1,
    "spark_tasks": 2,  # what every step's Spark form shares: tasks with progress, staged files (above storage)
    "simulator": 1,
    "ingest": 2,
    "google_ads": 2,  # the Google Ads API as a report source, beside the landing zone
    "features": 2,
    "quality": 3,
    "models": 3,
    "bidding": 4,
    "serving": 5,
    "monitoring": 5,
    # The application: the command line and the code location, above every domain package.
    "cli": 6,
    "quiet": 6,
    "definitions": 6,
    "__main__": 6,
    "__init__": 6,
}


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(REPO_ROOT).with_suffix("").parts): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _part(module: str) -> str:
    """The layer a module of the project belongs to: its subpackage, or the top-level module itself."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _project_imports() -> dict[str, set[str]]:
    modules = _modules()
    return {module: {name for name in _imports(path) if name in modules} for module, path in modules.items()}


def test_every_part_of_the_package_has_a_layer():
    assert {_part(module) for module in _modules()} <= set(LAYERS)


def test_no_domain_module_imports_a_higher_layer_or_dagster():
    upward = []
    for module, imported in _project_imports().items():
        for name in imported:
            if LAYERS[_part(name)] > LAYERS[_part(module)]:
                upward.append(f"{module} imports {name}")
    assert not upward, "\n".join(sorted(upward))
    for module, path in _modules().items():
        if LAYERS[_part(module)] < LAYERS["cli"]:
            foreign = {name for name in _imports(path) if name.split(".")[0] in {"dagster", "assets", "resources"}}
            assert not foreign, f"{module} is domain code and imports {sorted(foreign)}"


def test_no_import_cycle_between_modules():
    graph = _project_imports()
    state: dict[str, str] = defaultdict(str)  # "" unvisited, "open" on the path, "done" finished

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for name in sorted(graph[module]):
            assert state[name] != "open", "import cycle: " + " → ".join([*path, module, name])
            if not state[name]:
                visit(name, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if not state[module]:
            visit(module, [])


def test_the_model_protocol_imports_nothing_from_the_project():
    assert not _project_imports()["daily_bids.models.protocol"]
