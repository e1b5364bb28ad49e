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

    def warehouse(self) -> Warehouse:
        """The warehouse, built once: IO managers and sources call this for every read and write, and an S3
        warehouse would otherwise open a new filesystem each time."""
        if self._warehouse is None:
            if self.uri.startswith("s3://"):
                self._require_bucket()
                self._warehouse = Warehouse(self.uri, s3_options(self.s3))
            else:
                self._warehouse = Warehouse(self.uri)
        return self._warehouse

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
