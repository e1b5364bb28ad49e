"""The warehouse as a resource.

No `from __future__ import annotations` in resource modules: Dagster reads field annotations at runtime, and
string annotations make nested resources recurse on attribute access.
"""

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from daily_bids.warehouse import S3Options, Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Where tables live: a local folder or an `s3://bucket/prefix` reached through dagster-aws's S3 resource."""

    uri: str
    s3: S3Resource = S3Resource()
    _warehouse: Warehouse | None = PrivateAttr(default=None)

    def warehouse(self) -> Warehouse:
        """The warehouse, built once: IO managers and sources call this for every read and write, and an S3
        warehouse would otherwise list the buckets and open a new filesystem each time."""
        if self._warehouse is None:
            if self.uri.startswith("s3://"):
                self._require_bucket()
                self._warehouse = Warehouse(self.uri, s3_options(self.s3))
            else:
                self._warehouse = Warehouse(self.uri)
        return self._warehouse

    def _require_bucket(self) -> None:
        bucket = self.uri[len("s3://") :].split("/", 1)[0]
        client = self.s3.get_client()
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in names:
            raise ValueError(f"warehouse bucket {bucket!r} of {self.uri} does not exist at {self.s3.endpoint_url or 'AWS'}")


def s3_options(s3: S3Resource) -> S3Options:
    """pyarrow's S3 settings from dagster-aws's S3 resource, so the endpoint is configured in one place."""
    return S3Options(
        endpoint_url=s3.endpoint_url or "",
        region=s3.region_name or "us-east-1",
        access_key=s3.aws_access_key_id or "",
        secret_key=s3.aws_secret_access_key or "",
    )
