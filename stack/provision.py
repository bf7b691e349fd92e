"""``python -m stack provision`` and ``python -m stack install spark-jars``: for servers that
the stack did not start (docker-compose, a cluster): create the contract's Kafka topics and the
S3 bucket at the endpoints the environment names, or fetch Spark's jars into an image
(``install web``: the live map's npm packages; ``install chromium``: the browser tests' Chromium).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from cityconf.env import load_env
from cityconf.errors import UserError
from cityconf.keys import value
from cityconf.layout import Layout


def _retry(what: str, action: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except Exception as exc:  # the server may still be starting
            if time.monotonic() > deadline:
                raise UserError(f"{what} failed for {timeout:.0f} s: {exc}") from None
            time.sleep(2)


def provision(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack provision", description=__doc__)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait per server")
    args = parser.parse_args(argv)
    env = load_env()

    from stack.kafka import create_topics, topic_partitions, topic_replication
    from stack.s3 import s3_client

    bootstrap = value(env, "KAFKA_BOOTSTRAP_SERVERS")
    replication = topic_replication(env)
    _retry(
        f"creating Kafka topics at {bootstrap}",
        lambda: create_topics(bootstrap, topic_partitions(), replication=replication),
        args.timeout,
    )
    bucket = value(env, "S3_BUCKET")
    client = s3_client(
        env["S3_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    )

    def ensure_bucket() -> None:
        if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=bucket)

    _retry(f"creating bucket {bucket} at {env['S3_ENDPOINT_URL']}", ensure_bucket, args.timeout)
    print(f"provisioned: Kafka topics at {bootstrap}, bucket s3://{bucket}")
    return 0


def install(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack install")
    parser.add_argument(
        "what",
        choices=["spark-jars", "web", "chromium"],
        help="Spark's jars; the live map's npm packages; the browser tests' Chromium",
    )
    what = parser.parse_args(argv).what
    from stack.install import ensure_chromium, install_spark_jars, install_web_assets

    layout = Layout.from_env(load_env()).ensure()
    if what == "web":
        print(f"live map packages in {install_web_assets(layout)}")
    elif what == "chromium":
        print(f"chromium at {ensure_chromium()}")
    else:
        print(f"spark jars in {install_spark_jars(layout)}")
    return 0


def main(argv: list[str]) -> int:
    """Dispatch ``provision`` and ``install`` (the stack's __main__ passes the subcommand)."""
    return install(argv[1:]) if argv and argv[0] == "install" else provision(argv)
