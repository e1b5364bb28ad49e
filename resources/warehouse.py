"""The warehouse as a resource.

No `from __future__ import annotations` in resource modules: Dagster reads field annotations at runtime, and
string annotations make nested resources recurse on attribute access.
"""

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from daily_bids.storage.warehouse import S3Options, Warehouse


class BoundedS3Resource(S3Resource):
    """dagster-aws's S3 resource with a timeout as well as its bounded retries: every S3 client the platform makes
    (pyarrow's, boto3's, MLflow's) is configured from it, through `s3_options`. It carries an `S3Options` (the
    deployment's: `from_options(settings.s3)`) as config, so its defaults are that type's."""

    max_attempts: int = Field(
        default=S3Options.max_attempts,
        ge=1,
        description="Attempts per S3 request, the first included (AWS standard retry mode).",
    )
    timeout_seconds: float = Field(
        default=S3Options.timeout_seconds,
        gt=0,
        description="Connect and read timeout of each S3 request, in seconds.",
    )

    @classmethod
    def from_options(cls, options: S3Options) -> "BoundedS3Resource":
        """The resource of these options (the keys stay with the AWS_* variables, a profile or an IAM role)."""
        return cls(
            endpoint_url=options.endpoint_url or None,
            region_name=options.region,
            max_attempts=options.max_attempts,
            timeout_seconds=options.timeout_seconds,
        )

    def get_client(self):
        """A boto3 S3 client with the retries and the timeouts (dagster-aws's own client has no timeouts)."""
        import boto3

        session = boto3.session.Session(profile_name=self.profile_name)
        client = session.client(
            "s3",
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            use_ssl=self.use_ssl,
            verify=self.verify,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            config=s3_options(self).botocore_config(),
        )
        if self.use_unsigned_session:
            from botocore.handlers import disable_signing

            client.meta.events.register("choose-signer.s3.*", disable_signing)
        return client


class WarehouseResource(dg.ConfigurableResource):
    """Where tables live: a local folder or an `s3://bucket/prefix` reached through dagster-aws's S3 resource."""

    uri: str
    s3: BoundedS3Resource = BoundedS3Resource()
    _warehouse: Warehouse | None = PrivateAttr(default=None)
    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._run_id = context.run.run_id if context.run is not None else None

    def warehouse(self, run_id: str | None = None) -> Warehouse:
        """The warehouse as the run sees it (the partitions it holds for their checks in place of the stored ones).
        Built once: IO managers and sources call this for every read and write, and an S3 warehouse would otherwise
        open a new filesystem each time. `run_id` names the run where the resource was not set up for one (inside an
        IO manager)."""
        if self._warehouse is None:
            if self.uri.startswith("s3://"):
                self._require_bucket()
                self._warehouse = Warehouse(self.uri, s3_options(self.s3))
            else:
                self._warehouse = Warehouse(self.uri)
        run_id = run_id or self._run_id
        return self._warehouse.seen_by_run(run_id) if run_id else self._warehouse

    def for_step(self, context: dg.AssetExecutionContext | dg.OutputContext) -> Warehouse:
        """The warehouse a step writes its partitions through. While blocking checks on the step's assets are in the
        run, what it writes is held until all of them have passed (`Warehouse.holding`), then replaces the stored
        partitions (`release_checked`): a table is never replaced by data its checks failed. A run that leaves the
        checks out on purpose (a selection without them) writes straight into the tables."""
        if isinstance(context, dg.OutputContext):
            step, asset_key, run_id = context.step_context, context.asset_key, context.run_id
        else:
            step, asset_key, run_id = context, next(iter(context.assets_def.keys)), context.run.run_id
        checks = blocking_checks_on_step(step.job_def.asset_layer.asset_graph, asset_key)
        return self.warehouse(run_id).holding(run_id, checks)

    def release_checked(self, context: dg.AssetCheckExecutionContext) -> list[str]:
        """Called by a blocking check that passed: the tables held for it whose every check has now passed replace
        the stored ones. Returns them."""
        run_id = context.run.run_id
        released = self.warehouse(run_id).release_if_checked(context.check_specs[0].key.to_user_string())
        if released:
            context.log.info(f"every blocking check passed: {', '.join(released)} replaced the stored partitions")
        return released

    def _require_bucket(self) -> None:
        """HeadBucket, not ListBuckets: it needs no permission beyond the bucket's own."""
        from botocore.exceptions import ClientError

        bucket = self.uri[len("s3://") :].split("/", 1)[0]
        try:
            self.s3.get_client().head_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            raise ValueError(
                f"warehouse bucket {bucket!r} of {self.uri} does not exist at {self.s3.endpoint_url or 'AWS'}"
            ) from None


def blocking_checks_on_step(asset_graph, asset_key: dg.AssetKey) -> dict[str, list[str]]:
    """The blocking checks of a run's `asset_graph` on each asset (by table) made in the same step as `asset_key`."""
    step_assets = asset_graph.assets_def_for_key(asset_key).keys
    checks = {key.path[-1]: [] for key in step_assets}
    for key in asset_graph.asset_check_keys:
        if key.asset_key in step_assets and asset_graph.get_check_spec(key).blocking:
            checks[key.asset_key.path[-1]].append(key.to_user_string())
    return checks


def held_metadata(store: Warehouse, table: str) -> dict[str, str]:
    """What a materialization's partitions wait for, when they are held for their checks."""
    checks = store.checks_holding(table)
    return {"replaces_the_stored_partitions_once_passed": ", ".join(checks)} if checks else {}


def s3_options(s3: BoundedS3Resource) -> S3Options:
    """Every S3 client's settings from the S3 resource, so the endpoint, retries and timeout are set in one place."""
    return S3Options(
        endpoint_url=s3.endpoint_url or "",
        region=s3.region_name or S3Options.region,
        access_key=s3.aws_access_key_id or "",
        secret_key=s3.aws_secret_access_key or "",
        max_attempts=s3.max_attempts,
        timeout_seconds=s3.timeout_seconds,
    )
