"""versitygw as S3A needs it: boto3 at its default settings, and directory-marker semantics."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def _client(env):
    # Default boto3 settings on purpose: newer SDKs send checksums some servers reject.
    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )


def test_put_and_get(stack_env):
    s3, bucket = _client(stack_env), stack_env["S3_BUCKET"]
    key = f"tests/stack/{uuid.uuid4().hex}/hello.bin"
    body = bytes(range(256)) * 1000
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    try:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    finally:
        s3.delete_object(Bucket=bucket, Key=key)


def test_directory_marker_semantics(stack_env):
    s3, bucket = _client(stack_env), stack_env["S3_BUCKET"]
    base = f"tests/stack/{uuid.uuid4().hex}"
    s3.put_object(Bucket=bucket, Key=f"{base}/a/b/", Body=b"")
    try:
        with pytest.raises(ClientError) as missing:
            s3.head_object(Bucket=bucket, Key=f"{base}/a/b")
        assert missing.value.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound")
        s3.head_object(Bucket=bucket, Key=f"{base}/a/b/")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{base}/a/b/")
        assert [o["Key"] for o in listed.get("Contents", [])] == [f"{base}/a/b/"]
    finally:
        s3.delete_object(Bucket=bucket, Key=f"{base}/a/b/")
