"""Experiment tracking in MLflow: one run per training, registered model versions, and the @champion alias."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.warehouse import BoundedS3Resource, s3_options

REGISTERED_MODEL = "daily_bids_keyword_model"
CHAMPION_ALIAS = "champion"
# MLflow's UI opens an experiment on what its kind says; without it, MLflow 3 opens on GenAI traces, which this
# platform has none of.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


class ExperimentTracker(dg.ConfigurableResource):
    tracking_uri: str = Field(description="MLflow tracking URI, e.g. sqlite:///mlflow.db or http://mlflow:5000.")
    experiment: str = "daily-bids"
    artifact_location: str = Field(
        "",
        description="Where a new experiment keeps its artifacts: s3://bucket/prefix "
        "or a folder; empty: beside a SQLite store, or the server's choice.",
    )
    s3: BoundedS3Resource = BoundedS3Resource()

    def _client(self):
        import mlflow  # imported where used: keeps Definitions loading fast

        self._configure_s3()
        mlflow.set_tracking_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment)
        if experiment is None:
            mlflow.create_experiment(
                self.experiment,
                artifact_location=self._artifact_location(),
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        elif experiment.tags.get(EXPERIMENT_KIND_TAG) is None:  # made by an earlier version: opened on its traces
            mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        if (
            experiment is not None
            and self.artifact_location
            and experiment.artifact_location != self._artifact_location()
        ):
            # MLflow fixes the location when it creates an experiment; writing elsewhere silently would lose models.
            raise ValueError(
                f"BIDS_MLFLOW_ARTIFACTS={self.artifact_location!r}, but the MLflow experiment "
                f"{self.experiment!r} at {self.tracking_uri} keeps its artifacts at "
                f"{experiment.artifact_location}: unset it, or use a new tracking store"
            )
        mlflow.set_experiment(self.experiment)
        return mlflow

    def _configure_s3(self) -> None:
        """MLflow's S3 artifacts through the platform's one S3 configuration. MLflow makes its boto3 clients with
        `boto3.client()`, so the default session's client config gives them the same bounded retries and timeouts,
        and MLFLOW_S3_ENDPOINT_URL follows BIDS_S3_ENDPOINT_URL, so the endpoint is set once."""
        import boto3
        import botocore.session

        options = s3_options(self.s3)
        if options.endpoint_url:
            os.environ["MLFLOW_S3_ENDPOINT_URL"] = options.endpoint_url
        core = botocore.session.get_session()
        core.set_default_client_config(options.botocore_config())
        boto3.setup_default_session(botocore_session=core, region_name=options.region)

    def _artifact_location(self) -> str | None:
        """BIDS_MLFLOW_ARTIFACTS when set (a folder as a file URI); else beside a SQLite store: `mlruns/` next to the
        database file, not wherever the process happens to run."""
        if self.artifact_location:
            if "://" in self.artifact_location:
                return self.artifact_location.rstrip("/")
            return Path(self.artifact_location).expanduser().resolve().as_uri()
        if self.tracking_uri.startswith("sqlite:///"):
            database = Path(self.tracking_uri[len("sqlite:///") :]).resolve()
            return (database.parent / "mlruns").as_uri()
        return None  # a tracking server decides

    def log_training(
        self,
        model,
        kind: str,
        params: dict,
        window: str,
        extra_metrics: dict | None = None,
        started_at: float | None = None,
    ) -> str:
        """One MLflow run for one trained model: params, metrics, data window, feature versions, git sha and the
        model bundle; the bundle is registered as a new version of the keyword model. `started_at` (seconds since
        the epoch) is when the training began, so that the run lasts as long as it did. Returns the run id."""
        mlflow = self._client()
        experiment_id = mlflow.get_experiment_by_name(self.experiment).experiment_id
        with _run(mlflow, experiment_id, f"{kind} {model.version}", started_at) as run:
            mlflow.set_tags(
                {
                    "model_kind": kind,
                    "model_version": model.version,
                    "data_window": window,
                    "git_sha": _git_sha(),
                    "scaler_version": model.registry_entry()["scaler_version"],
                }
            )
            mlflow.log_params({key: str(value)[:500] for key, value in params.items()})
            metrics = {**model.validation_metrics, **(extra_metrics or {})}
            mlflow.log_metrics({key: float(value) for key, value in metrics.items() if value == value})
            with tempfile.TemporaryDirectory() as folder:
                bundle = Path(folder) / f"{model.version}.zip"
                bundle.write_bytes(model.to_bytes())
                (Path(folder) / "feature_versions.json").write_text(json.dumps(model.feature_versions, indent=2))
                mlflow.log_artifact(str(bundle), artifact_path="model")
                mlflow.log_artifact(str(Path(folder) / "feature_versions.json"))
            client = mlflow.MlflowClient()
            if not client.search_registered_models(f"name='{REGISTERED_MODEL}'"):
                client.create_registered_model(REGISTERED_MODEL)
            client.create_model_version(
                REGISTERED_MODEL,
                f"runs:/{run.info.run_id}/model",
                run.info.run_id,
                tags={"model_version": model.version, "model_kind": kind},
            )
            return run.info.run_id

    def log_run(
        self, name: str, kind: str, params: dict, metrics: dict, artifacts: dict[str, bytes] | None = None
    ) -> str:
        """One MLflow run of something other than a keyword model (the bid landscape, a backtest); returns its id."""
        mlflow = self._client()
        with mlflow.start_run(run_name=name) as run:
            mlflow.set_tags({"model_kind": kind, "git_sha": _git_sha()})
            mlflow.log_params({key: str(value)[:500] for key, value in params.items()})
            mlflow.log_metrics({key: float(value) for key, value in metrics.items() if value == value})
            with tempfile.TemporaryDirectory() as folder:
                for file_name, content in (artifacts or {}).items():
                    (Path(folder) / file_name).write_bytes(content)
                    mlflow.log_artifact(str(Path(folder) / file_name))
            return run.info.run_id

    def log_tuning(self, kind: str, trials: list[dict], best: dict, window: str) -> str:
        """One MLflow run for a tuning study of `kind`, with a nested run per trial (its parameters, its validation
        deviance and its duration); the parent carries the best parameters. Returns the parent's run id."""
        mlflow = self._client()
        with mlflow.start_run(run_name=f"tuning {kind}") as parent:
            mlflow.set_tags({"model_kind": kind, "purpose": "tuning", "data_window": window, "git_sha": _git_sha()})
            mlflow.log_params({f"best_{key}": str(value)[:500] for key, value in best.items()})
            for trial in trials:
                with mlflow.start_run(run_name=f"{kind} trial {trial['number']}", nested=True):
                    mlflow.log_params({key: str(value)[:500] for key, value in trial["params"].items()})
                    mlflow.log_metrics(
                        {key: float(trial[key]) for key in ("value", "seconds") if trial[key] == trial[key]}
                    )
            finite = [trial["value"] for trial in trials if trial["value"] == trial["value"]]
            if finite:
                mlflow.log_metric("best_validation_clicks_poisson_deviance", min(finite))
            return parent.info.run_id

    def set_champion(self, model_version: str) -> str:
        """Point the @champion alias at the registered version of `model_version`; returns its number."""
        mlflow = self._client()
        client = mlflow.MlflowClient()
        found = client.search_model_versions(f"name='{REGISTERED_MODEL}' and tags.model_version='{model_version}'")
        if not found:
            raise LookupError(f"{model_version} is not registered in MLflow at {self.tracking_uri}")
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, found[0].version)
        return str(found[0].version)


def _run(mlflow, experiment_id: str, name: str, started_at: float | None):
    """An active MLflow run named `name`, in the experiment, that began at `started_at` (now, if None): a run
    logged once the work is done still shows how long the work took."""
    if started_at is None:
        return mlflow.start_run(run_name=name)
    created = mlflow.MlflowClient().create_run(experiment_id, start_time=int(started_at * 1000), run_name=name)
    return mlflow.start_run(run_id=created.info.run_id)


def _git_sha() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True)
    except FileNotFoundError:  # no git binary, as in a container image
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown (not a git checkout)"
