"""Render the contract as Markdown: ``python -m contract.docs`` prints the README's data contract.

The README's contract section is generated from ``contract.streams`` and a test checks that it
matches, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from contract.streams import ALL_STREAMS, ENVELOPE, POSITION, Field, Stream
from contract.topics import mqtt_topic

SHARED = {f.name for f in ENVELOPE + POSITION}


def _constraint(f: Field) -> str:
    parts = []
    if f.choices:
        parts.append(" \\| ".join(f"`{c}`" for c in f.choices))
    if f.minimum is not None:
        parts.append(f"≥ {f.minimum:g}")
    if f.maximum is not None:
        parts.append(f"≤ {f.maximum:g}")
    if f.nullable:
        parts.append("nullable")
    return ", ".join(parts)


def _table(fields: tuple[Field, ...]) -> list[str]:
    rows = ["| field | type | constraint | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.type.value} | {_constraint(f)} | {f.doc} |" for f in fields]
    return rows


def _stream(stream: Stream) -> list[str]:
    own = tuple(f for f in stream.fields if f.name not in SHARED)
    shared = [f.name for f in stream.fields if f.name in SHARED]
    head = (
        f"**{stream.name}**: MQTT `{mqtt_topic(stream, '<device_id>')}` → Kafka "
        f"`{stream.kafka_topic}`. {stream.doc}"
    )
    lines = [head, ""]
    if shared and stream.sequenced:
        lines += [f"Envelope{' and position' if 'latitude' in shared else ''}, then:", ""]
    return [*lines, *_table(own), ""]


def render() -> str:
    lines = [
        "Every data message starts with this envelope (and, where the stream has a position,"
        " `latitude`/`longitude`):",
        "",
        *_table(ENVELOPE + POSITION),
        "",
    ]
    for stream in ALL_STREAMS:
        lines += _stream(stream)
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
