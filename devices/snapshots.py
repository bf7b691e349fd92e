"""Camera snapshots: a tiny generated PNG (pure Python), uploaded to S3 or inlined as data: URI.

Uploads run on a small thread pool so the event loop never waits on S3; the message carries
the deterministic s3:// URI straight away and ``close()`` waits for every upload.
"""

from __future__ import annotations

import base64
import logging
import random
import struct
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from cityconf.keys import value

log = logging.getLogger(__name__)

W, H = 40, 24
GRASS, ROAD, CAR = bytes((90, 120, 80)), bytes((70, 70, 75)), bytes((235, 235, 225))
LEVEL_RGB = {
    "free": (60, 170, 80),
    "light": (140, 190, 70),
    "moderate": (230, 180, 40),
    "heavy": (230, 100, 40),
    "standstill": (200, 40, 40),
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(vehicles: int, level: str, rng: random.Random) -> bytes:
    """A road seen from above: grey carriageway, one light dot per vehicle, a congestion bar."""
    # Rows of RGB bytes (a filter byte each when joined): a camera makes one a minute, so a
    # per-pixel loop was most of a long dry run's time.
    rows = [bytearray(GRASS * W) for _ in range(H)]
    for y in range(6, 18):
        rows[y] = bytearray(ROAD * W)
    for _ in range(min(vehicles, 60)):
        x, y = rng.randrange(W), rng.randrange(7, 17)
        rows[y][3 * x : 3 * x + 3] = CAR
    rows[0] = bytearray(bytes(LEVEL_RGB.get(level, (0, 0, 0))) * W)
    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 1))
        + _chunk(b"IEND", b"")
    )


def data_uri(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


class Uploader:
    """Puts snapshots into ``s3://bucket/...``; with no client (dry run) only names them."""

    def __init__(self, bucket: str, client: object | None = None, workers: int = 2) -> None:
        self.bucket = bucket
        self.client = client
        self.pool = ThreadPoolExecutor(workers, "snapshot") if client is not None else None
        self.futures: list[Future] = []
        self.failed = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Uploader:
        import boto3  # imported here: dry runs and tests need no AWS SDK start-up

        client = boto3.client(
            "s3",
            endpoint_url=env.get("S3_ENDPOINT_URL"),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=value(env, "AWS_REGION"),
        )
        return cls(value(env, "S3_BUCKET"), client)

    def put(self, key: str, image: bytes) -> str:
        if self.pool is not None:
            self.futures.append(self.pool.submit(self._put, key, image))
            if len(self.futures) > 256:
                self.futures = [f for f in self.futures if not f.done()]
        return f"s3://{self.bucket}/{key}"

    def _put(self, key: str, image: bytes) -> None:
        try:
            self.client.put_object(  # type: ignore[union-attr]
                Bucket=self.bucket, Key=key, Body=image, ContentType="image/png"
            )
        except Exception as exc:  # a lost snapshot must not stop the fleet
            self.failed += 1
            log.warning("snapshot upload %s failed: %s", key, exc)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
