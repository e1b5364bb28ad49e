"""The README and the docs are true: their generated tables equal the code, every shell command in them runs in a
test, as written, and every relative link leads somewhere.

`DOC_BLOCKS` names each ```bash block of README.md and docs/*.md by a phrase only it contains, and the test that runs
it (or, for the few that cannot run inside the suite, why). A block added to any of those pages without a line here
fails `test_every_shell_block_is_claimed_by_one_runner`.
"""

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from daily_bids import settings
from daily_bids.ingest.validation import quarantine_reasons_markdown
from daily_bids.schema import contract_table_markdown
from daily_bids.storage.warehouse import Warehouse
from support.deployment import REPO_ROOT, deployment_env

# The pages whose shell blocks and generated tables are checked: the README and every page of docs/.
DOC_PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# The pages whose relative links are checked: those, and the benchmark results they link to.
LINKED_PAGES = [*DOC_PAGES, REPO_ROOT / "benchmarks" / "RESULTS.md"]
README = (REPO_ROOT / "README.md").read_text()
VENV_BIN = str(Path(sys.executable).parent)

DOC_BLOCKS = {
    "make run    #": "CI: .ci/run runs `make test` (which includes `make check`'s lint and unit lane) and then "
    "`make run` on a fresh clone",
    "make ui     #": "a server that runs until stopped: test_served_ui.py::"
    "test_the_served_graph_has_every_asset_and_check_of_the_project starts the same webserver on the "
    "same workspace.yaml",
    "make ui                                                         # then turn on landing_file_sensor": "the same "
    "server; test_landing_pipeline.py evaluates landing_file_sensor",
    "features list": "test_readme.py::test_the_feature_catalog_commands",
    "models tune": "test_readme.py::test_the_model_lab_commands (with a smaller budget)",
    "models register-keras": "test_readme.py::test_the_model_lab_commands",
    "mlflow ui": "test_readme.py::test_mlflow_ui_serves_the_tracked_runs",
    "--partition-range": "test_readme.py::test_the_running_it_commands",
    "BIDS_ENGINE=spark": "test_readme.py::test_the_spark_engine_command",
    "~/bids-acme": "test_first_day.py::test_the_readme_first_day_with_a_google_ads_export",
    "BIDS_GOOGLE_ADS_CONFIG=~/google-ads.yaml": "test_google_ads_account.py::"
    "test_a_run_from_an_empty_warehouse_applies_the_bids_and_a_rollback_restores_them",
    "~/bids-adwords": "test_first_day.py::test_the_readme_walk_through_of_real_adwords_data",
    "cp platform/dagster-postgres.yaml": "needs the user's PostgreSQL server and asks for a password: "
    "test_production_deployment.py runs the same steps (the file in DAGSTER_HOME, the "
    "DAGSTER_PG_* variables, an empty database, python -m daily_bids run) against "
    "a server it starts",
    "docker compose -f platform/compose.yaml": "needs Docker with the compose plugin: untested here",
    "helm upgrade --install": "needs a Kubernetes cluster and helm: untested here",
}
README_BLOCKS = DOC_BLOCKS  # the name this table had when only the README was checked


def blocks(language: str = "bash") -> list[tuple[Path, str]]:
    """Every ```<language> block of the README and docs/*.md, with the page it is on."""
    return [
        (page, block)
        for page in DOC_PAGES
        for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.DOTALL)
    ]


def bash_blocks() -> list[str]:
    return [block for _, block in blocks("bash")]


def doc_block(phrase: str, language: str = "bash") -> str:
    """The one ```<language> block, in README.md or docs/*.md, that contains `phrase`."""
    found = [block for _, block in blocks(language) if phrase in block]
    assert len(found) == 1, f"{len(found)} {language} blocks of the README and docs contain {phrase!r}"
    return found[0]


def readme_block(phrase: str) -> str:
    """The one ```bash block of the README or docs/*.md that contains `phrase` (wherever the block now lives)."""
    return doc_block(phrase)


def run_block(block: str, env: dict, cwd: Path = REPO_ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    """A README block through bash, as a user would paste it (with .venv/bin on the PATH, as the README says)."""
    env = {**env, "PATH": f"{VENV_BIN}:{env.get('PATH', os.environ['PATH'])}"}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "marker, generate",
    [
        ("settings-table", lambda: settings.settings_table_markdown()),
        ("contract-table", contract_table_markdown),
        ("quarantine-reasons", quarantine_reasons_markdown),
    ],
)
def test_doc_tables_are_the_ones_the_code_defines(marker, generate):
    """A generated table lives on one page (README.md or docs/*.md), between its markers, and equals the code's."""
    pages = [page for page in DOC_PAGES if f"<!-- {marker} -->\n" in page.read_text()]
    assert len(pages) == 1, f"<!-- {marker} --> is on {len(pages)} pages, needs exactly one: {pages}"
    between = pages[0].read_text().split(f"<!-- {marker} -->\n", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    assert between.strip() == generate(), f"regenerate the table in {pages[0].relative_to(REPO_ROOT)}"


def test_every_shell_block_is_claimed_by_one_runner():
    for page, block in blocks("bash"):
        claimed = [phrase for phrase in DOC_BLOCKS if phrase in block]
        where = page.relative_to(REPO_ROOT)
        assert len(claimed) == 1, f"{where}: block claimed by {claimed}, needs exactly one line in DOC_BLOCKS:\n{block}"
    tests = {path.name: path for path in (REPO_ROOT / "tests").rglob("test_*.py")}
    for phrase, runner in DOC_BLOCKS.items():
        assert any(phrase in block for block in bash_blocks()), f"no README or docs block contains {phrase!r} any more"
        for module, test in re.findall(r"(test_\w+\.py)::(test_\w+)", runner):  # named tests exist
            assert module in tests, f"{runner}: no tests/**/{module}"
            assert f"def {test}(" in tests[module].read_text(), (module, test)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {_anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def test_every_relative_link_in_the_docs_leads_to_a_file_and_heading_that_exist():
    broken = []
    for page in LINKED_PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_platform_folder_is_not_a_python_package():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory):
    """What `make run` leaves behind, run the way `make run` runs it (twice: the second reuses everything), on a
    small simulated account in a deployment of its own."""
    folder = tmp_path_factory.mktemp("make_run")
    env = deployment_env(folder, BIDS_SIM_KEYWORDS="300")
    day = utc_yesterday()  # the day the runs bid from (the CLI reads the same clock)
    runs = [make_runs_command(env), make_runs_command(env)]
    return {
        "folder": folder,
        "env": env,
        "runs": runs,
        "day": day,
        "latest_day": day,
        "store": Warehouse(str(folder / "warehouse")),
    }


@pytest.fixture
def bootstrapped_now(bootstrapped):
    """`bootstrapped`, caught up with the clock: the README's commands name their days with `date`, and after
    midnight UTC they ask for a day `make run` had not reached yet, so its command runs again, as a user's cron would."""
    if bootstrapped["latest_day"] != utc_yesterday():
        bootstrapped["latest_day"] = utc_yesterday()
        make_runs_command(bootstrapped["env"])
    return {**bootstrapped, "day": bootstrapped["latest_day"]}


def utc_yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def make_runs_command(env: dict) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "daily_bids", "run"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_make_runs_command_bootstraps_then_reuses_history(bootstrapped):
    first, second = bootstrapped["runs"]
    yesterday = bootstrapped["day"]
    assert f"bidding from the report of {yesterday}" in first
    assert "report history: materializing" in first
    assert "training clusters, the XGBoost and the deep model, then the champion gate" in first
    assert "(56 days)" in first  # the default window: the simulator has all the history it asks for
    csv = bootstrapped["store"].display_uri(
        f"exports/google_ads_editor/keyword_bids_{yesterday + dt.timedelta(days=1)}.csv"
    )
    assert f"bid CSV (Ads Editor)   {csv}" in first and Path(csv).is_file()
    assert "report history: all 91 days present, reused" in second
    assert "feature history: all 64 days present, reused" in second
    assert "reused" in second.split("champion ")[1]
    assert "not published          partition" in second  # the day was published once, by the first run


def test_the_running_it_commands(bootstrapped_now):
    """The README's one-day chain, range backfill and training commands, on what `make run` left."""
    store = bootstrapped_now["store"]
    today = bootstrapped_now["day"] + dt.timedelta(days=1)
    before = store.list_partitions("keyword_features")
    started = pd.Timestamp.now(tz="UTC")
    done = run_block(readme_block("--partition-range"), bootstrapped_now["env"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert store.list_partitions("keyword_features") == before  # past days rebuilt, none added or lost
    written = {
        table: [d for d in store.list_partitions(table) if _written_since(store, table, d, started)]
        for table in ("keyword_quarantine", "keyword_features", "keyword_bids")
    }
    yesterday = today - dt.timedelta(days=1)
    week = [today - dt.timedelta(days=n) for n in range(8, 1, -1)]
    assert written["keyword_quarantine"] == written["keyword_features"] == [*week, yesterday]
    assert written["keyword_bids"] == [yesterday]  # the backfill computes no bids
    # The training command stored the candidates again and the gate judged them on the latest features.
    registry = store.read_table("model_registry")
    again = registry[pd.to_datetime(registry["stored_at"]) > started]
    assert set(again["asset"]) == {"xgboost_model", "deep_model", "champion_model"}
    candidates = again[again["asset"] != "champion_model"]
    assert set(candidates["trained_through"]) == {(today - dt.timedelta(days=8)).isoformat()}
    # What serves is the gate's winner refit through the latest day (or the champion before it, refit as well).
    assert set(again.loc[again["asset"] == "champion_model", "trained_through"]) == {yesterday.isoformat()}


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")
def test_the_spark_engine_command(bootstrapped_now):
    """The README's Spark command rescored yesterday on Spark: the same bids, and the parity check passed."""
    store, yesterday = bootstrapped_now["store"], bootstrapped_now["day"]
    before = store.read_partitions("keyword_bids", [yesterday]).set_index("keyword_id")["bid"].sort_index()
    started = pd.Timestamp.now(tz="UTC")
    done = run_block(readme_block("BIDS_ENGINE=spark"), bootstrapped_now["env"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _written_since(store, "keyword_bids", yesterday, started)
    after = store.read_partitions("keyword_bids", [yesterday]).set_index("keyword_id")["bid"].sort_index()
    assert after.index.equals(before.index) and ((after - before).abs() <= 0.011).all()
    assert "Asset check 'predictions_match_the_model' on 'keyword_predictions' passed" in done.stdout + done.stderr
    assert "on the spark engine" in done.stdout + done.stderr


def _written_since(store: Warehouse, table: str, day: dt.date, moment) -> bool:
    return store.fs.get_file_info(store.partition_path(table, day)).mtime >= moment


def test_the_feature_catalog_commands(bootstrapped_now):
    done = run_block(readme_block("features list"), bootstrapped_now["env"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "45 features; statistics of" in done.stdout
    assert "ctr_28d\n  description" in done.stdout and "models by feature version" in done.stdout
    assert "click-through rate" in done.stdout
    after = done.stdout.split("models by feature version\n", 1)[1]
    shown = re.findall(r"^  [0-9a-f]+: (.+)$", after, flags=re.MULTILINE)  # "  <feature version>: model, model"
    models = [m.strip() for line in shown for m in line.split(",")]
    assert models and len(models) == len(set(models))  # each model once


def python_block(phrase: str) -> str:
    """The one ```python block of the README or docs/*.md that contains `phrase`."""
    return doc_block(phrase, "python")


def test_the_model_lab_commands(bootstrapped_now):
    """The README's model lab as a user runs it after `make run`: tune, train a Keras model in a "notebook" (the
    README's example, run as written but for its cut-off day), register it, retrain; the gate judges both."""
    import mlflow

    folder, env = bootstrapped_now["folder"], bootstrapped_now["env"]
    store = bootstrapped_now["store"]
    latest = store.list_partitions("keyword_features")[-1]
    cutoff = latest - dt.timedelta(days=20)  # well before the next gate's holdout
    notebook = python_block("my_model.keras").replace("dt.date(2025, 6, 1)", f"dt.date({cutoff:%Y, %-m, %-d})")
    (folder / "notebook.py").write_text(notebook)
    done = subprocess.run(
        [sys.executable, "notebook.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]

    # One trial, the untuned baseline: the command is under test here, the search in tests/unit/test_tuning.py.
    tune = readme_block("models tune").replace("--trials 20 --timeout 600", "--trials 1 --timeout 300")
    done = run_block(tune, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "xgboost_best_parameters" in done.stdout and "deep_best_parameters" in done.stdout
    assert store.exists("model_tuning/xgboost.json") and store.exists("model_tuning/deep.json")

    register = readme_block("models register-keras").replace("my_model.keras", str(folder / "my_model.keras"))
    done = run_block(register.replace("2025-06-01", cutoff.isoformat()), env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "keras-" in done.stdout and "validated_on" in done.stdout
    refused = run_block(
        f"python -m daily_bids models register-keras {folder / 'notebook.py'} --trained-through {cutoff}", env
    )
    assert refused.returncode == 1 and "not a Keras model file" in refused.stdout

    done = subprocess.run(
        [sys.executable, "-m", "daily_bids", "run", "--retrain"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    import dagster as dg

    from daily_bids.models import tuning

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        gate = instance.get_latest_materialization_event(dg.AssetKey("champion_model")).asset_materialization.metadata
        xgboost = instance.get_latest_materialization_event(dg.AssetKey("xgboost_model")).asset_materialization.metadata
    judged = {key.split("_clicks_")[0] for key in gate if key.endswith("_clicks_poisson_deviance")}
    assert {"xgboost", "deep", "blend", "keras"} <= judged, judged
    assert set(gate["blend_weights"].value) == {"xgboost", "deep"}
    assert set(xgboost["tuned_parameters"].value) == set(tuning.SEARCH_SPACES["xgboost"])
    mlflow.set_tracking_uri(env["BIDS_MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["daily-bids"])
    kinds = set(runs["tags.model_kind"])
    assert {"xgboost", "deep", "blend", "keras"} <= kinds, kinds
    tuning = runs[runs["tags.purpose"] == "tuning"]
    assert len(tuning) == 2  # one per kind, each the parent of its trials
    trials = runs[runs["tags.mlflow.parentRunId"].isin(tuning["run_id"])]
    assert len(trials) == 2 and trials["metrics.value"].notna().all()  # one trial of each kind


def test_mlflow_ui_serves_the_tracked_runs(bootstrapped_now):
    """`mlflow ui` as the README starts it, in a folder holding the deployment's MLflow store."""
    folder = bootstrapped_now["folder"]
    with contextlib.suppress(FileExistsError):
        (folder / ".venv").symlink_to(Path(VENV_BIN).parent)
    server = subprocess.Popen(
        ["bash", "-c", readme_block("mlflow ui")],
        cwd=folder,
        env=bootstrapped_now["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(
                    "http://127.0.0.1:5000/api/2.0/mlflow/experiments/search",
                    json.dumps({"max_results": 10}).encode(),
                    {"Content-Type": "application/json"},
                )
                experiments = json.load(urllib.request.urlopen(request, timeout=10))["experiments"]
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "mlflow ui did not start"
                time.sleep(1)
        (daily_bids,) = [e for e in experiments if e["name"] == "daily-bids"]
        # What MLflow's UI reads to open the experiment on its training runs rather than on GenAI traces.
        assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in daily_bids["tags"]
        page = urllib.request.urlopen("http://127.0.0.1:5000/", timeout=10).read().decode()
        assert "MLflow" in page
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
