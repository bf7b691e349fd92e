"""versitygw: an S3 server over a local folder, with metadata in a sibling sidecar folder."""

from __future__ import annotations

import os

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cityconf.errors import UserError
from cityconf.keys import default
from cityconf.layout import Layout
from stack.install import install_versitygw, versitygw_binary, versitygw_installed
from stack.process import Port, Server

HOST = "127.0.0.1"
REGION = default("AWS_REGION") or ""


def s3_client(
    endpoint: str, access_key: str, secret_key: str, region: str = REGION, *, fast: bool = False
):
    """A boto3 S3 client for the local server (``fast``: short timeouts, no retries, for probes)."""
    config = (
        Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}) if fast else None
    )
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, region_name=region, config=config,
    )  # fmt: skip


class S3Server(Server):
    """One versitygw process; buckets are folders under ``data/s3/objects``."""

    name = "s3"

    def __init__(self, layout: Layout, port: int, access_key: str, secret_key: str) -> None:
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        # Sibling folders: versitygw refuses a sidecar whose path starts with the data path.
        self.objects_dir = layout.data / "s3" / "objects"
        self.meta_dir = layout.data / "s3" / "meta"
        super().__init__(layout, str(self.objects_dir))

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ports(self) -> list[Port]:
        return [(self.port, "S3", "S3_PORT")]

    def installed(self) -> bool:
        return versitygw_installed(self.layout)

    def install(self) -> None:
        install_versitygw(self.layout)

    def client(self, *, fast: bool = False):
        return s3_client(self.endpoint, self.access_key, self.secret_key, fast=fast)

    def healthy(self) -> bool:
        try:
            self.client(fast=True).list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def command(self) -> list[str]:
        return [
            str(versitygw_binary(self.layout)), "--port", f"{HOST}:{self.port}", "--region", REGION,
            "--quiet", "posix", "--sidecar", str(self.meta_dir), str(self.objects_dir),
        ]  # fmt: skip

    def launch(self) -> None:
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        # Keys go through the environment, so they do not show in `ps`.
        env = {
            **os.environ,
            "ROOT_ACCESS_KEY_ID": self.access_key,
            "ROOT_SECRET_ACCESS_KEY": self.secret_key,
        }
        self.proc.launch(self.command(), cwd=self.layout.root, env=env)

    def ensure_bucket(self, bucket: str) -> bool:
        """Create ``bucket`` unless it exists; True if created."""
        client = self.client()
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise UserError(f"S3 bucket {bucket}: {exc}") from exc
        client.create_bucket(Bucket=bucket)
        return True

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_PORT": str(self.port),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
        }
