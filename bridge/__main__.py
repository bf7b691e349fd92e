"""``python -m bridge`` / ``cityfleet-bridge``: MQTT into Kafka, acking only what Kafka has."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import orjson

import contract
from cityconf.env import load_env
from cityconf.errors import BAD_INPUT, FAILED, UserError

try:
    from bridge.app import Bridge, RunLimits, install_signals
except ImportError as exc:  # bridge.mqtt refuses a paho its hooks were not written for
    print(f"cityfleet-bridge: {exc}", file=sys.stderr)
    raise SystemExit(FAILED) from None
from bridge.kafka import probe
from bridge.settings import Settings, load_settings

log = logging.getLogger("bridge")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cityfleet-bridge",
        description="Bridge MQTT (city/#) into Kafka: validate against the contract, dead-letter "
        "what fails, and PUBACK each message only after Kafka confirmed it.",
    )
    p.add_argument("--config", type=Path, help="YAML file over bridge/default.yaml")
    p.add_argument("--client-id", help="MQTT client id (fixed per process: it names the session)")
    p.add_argument("--share-group", help="subscribe via $share/<NAME>/... to split the load")
    p.add_argument(
        "--subscribe",
        action="append",
        metavar="FILTER",
        help="MQTT topic filter (repeatable); replaces mqtt.subscribe",
    )
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics here (0 = off)")
    p.add_argument(
        "--metrics-host",
        help="address the metrics bind (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    p.add_argument("--idle-exit", type=float, metavar="SECONDS", help="exit after this long idle")
    p.add_argument("--max-messages", type=int, metavar="N", help="exit after N messages")
    p.add_argument(
        "--summary",
        type=Path,
        metavar="PATH",
        help="at exit, write a JSON summary here: busy_s and the counters (for benchmarks)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def _kafka_topics(s: Settings) -> set[str]:
    """Topics the routes can name that we can know up front, to probe before starting."""
    topics = {s.dead_letter_topic}
    for route in s.routes:
        if "{device_id}" in route.topic or "{topic}" in route.topic:
            continue
        for stream in contract.ALL_STREAMS:
            topics.add(route.topic.format(stream=stream.name, stream_topic=stream.kafka_topic))
    return topics


def write_summary(path: Path, summary: dict[str, object]) -> None:
    """Write under a temporary name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.max_messages is not None and args.max_messages < 1:
            raise UserError("--max-messages: must be at least 1", BAD_INPUT)
        if args.idle_exit is not None and args.idle_exit <= 0:
            raise UserError("--idle-exit: must be a positive number of seconds", BAD_INPUT)
        settings = load_settings(
            load_env(),
            args.config,
            {
                "client_id": args.client_id,
                "share_group": args.share_group,
                "subscribe": args.subscribe,
                "metrics_port": args.metrics_port,
                "metrics_host": args.metrics_host,
            },
        )
        probe(settings.kafka_bootstrap, _kafka_topics(settings))
        bridge = Bridge(settings, RunLimits(args.idle_exit, args.max_messages))
        install_signals(bridge)
        bridge.run()
        if args.summary:
            write_summary(args.summary, bridge.summary())
    except UserError as exc:  # BridgeError and KafkaUnavailable among them
        print(f"cityfleet-bridge: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "cityfleet-bridge: interrupted twice; unconfirmed messages stay unacked",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
