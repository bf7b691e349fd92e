"""Fuzzing the bridge: 10,000 generated messages through a running bridge, real servers.

Hypothesis draws each message's recipe: valid contract messages and mutations of them
(truncated, a byte flipped, a field dropped or of the wrong type, NaN and infinities, duplicate
keys, deep nesting, huge fields), random bytes and random JSON, on valid and junk topics, with
and without user properties (forged bridge header names, huge blocks). All are published in
bulk, then checked: each is exactly once either in its stream's topic (and then passes the
contract) or in ``dead_letter`` with a reason, the bridge never dies, and its memory stays
bounded.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import psutil
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import contract
from drills.harness import BridgeRun, publish, read_since, watermarks
from tests.bridge.helpers import sample

pytestmark = pytest.mark.integration
EXAMPLES = 10_000
HUGE = 40  # of them about a megabyte each, spread evenly through the run
PER_EXAMPLE = 16
REASONS = {
    "invalid_json",
    "not_an_object",
    "schema",
    "device_mismatch",
    "unknown_topic",
    "oversize",
    "oversize_properties",
    "bad_properties",
}
STREAMS = [s.name for s in contract.ALL_STREAMS]
# What Mosquitto accepts in a topic or property string: no control, private-use, unassigned
# or surrogate code points (it drops the connection otherwise), no topic separators.
TEXT = st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn"), blacklist_characters="/+#\x00")
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(TEXT),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(TEXT), inner, max_size=4),
    max_leaves=12,
)


@dataclass(frozen=True)
class Recipe:
    stream: str  # the topic's second level (a stream name or junk)
    suffix: str  # appended to the unique device id: "" keeps the topic valid
    body: str  # how the payload is made
    arg: Any  # the body's parameter
    props: tuple[tuple[str, str], ...] | int | None  # pairs, a huge block's size, or none


MUTATIONS = st.sampled_from(
    ["truncate", "flip", "drop", "wrong_type", "extra", "nan", "inf", "dup_key", "nest"]
)
SEED = st.integers(0, 2**32)
BODIES = st.one_of(
    st.tuples(st.just("valid"), st.none()),
    st.tuples(st.just("mutated"), st.tuples(MUTATIONS, SEED)),
    st.tuples(st.just("bytes"), st.binary(max_size=300)),
    st.tuples(st.just("json"), JSON),
)
FORGED = st.sampled_from(["mqtt_topic", "bridge_id", "received_at", "dlq_reason", "source_topic"])
PAIRS = st.lists(
    st.tuples(FORGED | st.text(TEXT, max_size=20), st.text(TEXT, max_size=40)), max_size=5
).map(tuple)
# Mostly valid topics, so that payloads meet the contract's checks, not just the topic's.
STREAM_LEVEL = st.sampled_from([*STREAMS, ""]).flatmap(
    lambda name: st.just(name) if name else st.text(TEXT, min_size=1, max_size=12)
)
SUFFIX = st.sampled_from(["", "", "", "text", "long"]).flatmap(
    lambda kind: (
        st.just("")
        if not kind
        else st.text(TEXT, max_size=30)
        if kind == "text"
        else st.integers(70, 60_000).map(lambda n: "x" * n)
    )
)


@st.composite
def recipes(draw: st.DrawFn) -> Recipe:
    """A message of ordinary size: the bulk of the run."""
    body = draw(BODIES)
    props = draw(st.none() | PAIRS)
    return Recipe(draw(STREAM_LEVEL), draw(SUFFIX), body[0], body[1], props)


@st.composite
def huge_recipes(draw: st.DrawFn) -> Recipe:
    """About a megabyte each: a random payload, a huge field, or a huge property block."""
    body = draw(
        st.tuples(st.just("big"), st.integers(60_000, 1_500_000))
        | st.tuples(st.just("mutated"), st.tuples(st.just("huge"), SEED))
        | st.tuples(st.just("valid"), st.none())
    )
    props = draw(st.integers(700_000, 1_200_000)) if body[0] == "valid" else draw(PAIRS)
    return Recipe(draw(STREAM_LEVEL), "", body[0], body[1], props)


def make_payload(recipe: Recipe, stream: str, device: str, seq: int) -> bytes:
    if recipe.body == "bytes":
        return recipe.arg
    if recipe.body == "json":
        return orjson.dumps(recipe.arg)
    if recipe.body == "big":
        return random.Random(recipe.arg).randbytes(recipe.arg)
    base = sample(stream if stream in contract.STREAMS else "vehicle", device, seq)
    good = orjson.dumps(base)
    if recipe.body == "valid":
        return good
    kind, seed = recipe.arg
    rnd = random.Random(seed)
    name = rnd.choice(sorted(base))
    if kind == "truncate":
        return good[: rnd.randrange(len(good))]
    if kind == "flip":
        i = rnd.randrange(len(good))
        return good[:i] + bytes([good[i] ^ (1 << rnd.randrange(8))]) + good[i + 1 :]
    if kind == "drop":
        return orjson.dumps({k: v for k, v in base.items() if k != name})
    if kind == "wrong_type":
        wrong = rnd.choice([None, "1", 1, 1.5, [], {}, True, "x" * 100])
        return orjson.dumps({**base, name: wrong})
    if kind == "extra":
        return orjson.dumps({**base, f"x{seed}": seed})
    if kind in ("nan", "inf"):
        token = b"NaN" if kind == "nan" else rnd.choice([b"Infinity", b"-Infinity", b"1e999"])
        return good[:-1] + b',"' + name.encode() + b'":' + token + b"}"
    if kind == "dup_key":
        return good[:-1] + b',"' + name.encode() + b'":' + orjson.dumps(rnd.random()) + b"}"
    if kind == "nest":
        depth = rnd.randrange(100, 60_000)
        return orjson.dumps({**base, name: 0})[:-2] + b"[" * depth + b"]" * depth + b"}"
    # huge: one field a string of 70 KB to 1.4 MB
    return orjson.dumps({**base, name: "y" * rnd.randrange(70_000, 1_400_000)})


def make_props(recipe: Recipe) -> Properties | None:
    if recipe.props is None or recipe.props == ():
        return None
    props = Properties(PacketTypes.PUBLISH)
    if isinstance(recipe.props, int):  # a block about this large, in 60 KB values
        count = recipe.props // 60_000 + 1
        props.UserProperty = [(f"big{i}", "z" * 60_000) for i in range(count)]
    else:
        props.UserProperty = list(recipe.props)
    return props


def generate(strategy: st.SearchStrategy[Recipe], count: int) -> list[Recipe]:
    """Hypothesis draws the recipes, ``PER_EXAMPLE`` at a time (its per-example cost is most
    of the time); they are published in bulk afterwards, not one round trip each."""
    out: list[Recipe] = []

    @settings(
        max_examples=-(-count // PER_EXAMPLE),
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(strategy, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def collect(batch: list[Recipe]) -> None:
        out.extend(batch)

    collect()
    return out


def expected_valid(recipe: Recipe) -> bool:
    return (
        recipe.body == "valid"
        and recipe.suffix == ""
        and recipe.stream in STREAMS
        and not isinstance(recipe.props, int)
    )


def check(
    n: int, sent: tuple[Recipe, str, bytes], topic: str, value: bytes, h: dict[str, bytes]
) -> list[str]:
    """What is wrong with record ``n`` as Kafka holds it (nothing, if all is well)."""
    recipe, mqtt_topic, payload = sent
    out = []
    if h["mqtt_topic"] != mqtt_topic.encode() or not h["bridge_id"].startswith(b"bridge-fz"):
        out.append("a bridge header was changed")
    if isinstance(recipe.props, tuple):
        out += [f"user property {k!r} lost" for k, _ in recipe.props if f"mqtt.user.{k}" not in h]
    if topic == "dead_letter":
        reason = h.get("dlq_reason", b"").decode()
        if reason not in REASONS or not h.get("dlq_detail"):
            out.append(f"dead letter without a known reason: {reason!r}")
        capped = "dlq_payload_bytes" in h
        if value != (payload[:4096] if capped else payload) or len(value) > 65_536:
            out.append("dead letter value is neither the payload nor its first 4 KiB")
        if expected_valid(recipe):
            out.append(f"a valid message was dead-lettered ({reason})")
        return out
    try:
        stream, _, _ = contract.decode(mqtt_topic, payload)
    except contract.ContractError as exc:
        return [*out, f"{topic} took a message the contract refuses: {exc}"]
    if value != payload or topic != stream.kafka_topic:
        out.append(f"changed on its way to {topic}")
    return out


def test_fuzzed_messages_all_land_once_and_the_bridge_survives(
    stack_env, private_mosquitto, tmp_path
):
    began = time.monotonic()
    recipes_ = generate(recipes(), EXAMPLES)
    huge = generate(huge_recipes(), HUGE)[:HUGE]
    step = len(recipes_) // len(huge)
    for i, recipe in enumerate(huge):
        recipes_.insert(i * (step + 1), recipe)
    tag = f"fz{uuid.uuid4().hex[:6]}"
    sent: dict[int, tuple[Recipe, str, bytes]] = {}
    messages = []
    for n, recipe in enumerate(recipes_):
        device = f"{tag}{n:05d}"
        topic = f"city/{recipe.stream}/{device}{recipe.suffix}"
        payload = make_payload(recipe, recipe.stream, device + recipe.suffix, n + 1)
        sent[n] = (recipe, topic, payload)
        messages.append((topic, payload, make_props(recipe)))

    env = {**stack_env, **private_mosquitto(env=stack_env).env}
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    start = watermarks(bootstrap, contract.KAFKA_TOPICS)
    args = ["--client-id", f"bridge-{tag}", "--max-messages", str(len(messages))]
    bridge = BridgeRun(env, args, tmp_path / "bridge.log").start().wait_subscribed()
    proc = psutil.Process(bridge.proc.pid)
    rss = []
    for i in range(0, len(messages), 1000):
        publish(env, messages[i : i + 1000])
        rss.append(proc.memory_info().rss)
    published = time.monotonic()
    assert bridge.wait(300) == 0, bridge.log()[-3000:]

    mark = re.compile(rf"{tag}(\d{{5}})".encode())
    mine = lambda _k, h: tag.encode() in h.get("mqtt_topic", b"")  # noqa: E731
    got = read_since(bootstrap, start, len(sent), mine)
    seen: Counter[int] = Counter()
    problems = []
    for topic, _key, value, h in got:
        n = int(mark.search(h["mqtt_topic"]).group(1))  # type: ignore[union-attr]
        seen[n] += 1
        problems += [(n, p) for p in check(n, sent[n], topic, value, h)]
    missing = sorted(set(sent) - set(seen))
    doubled = sorted(n for n, c in seen.items() if c > 1)
    assert not missing, f"{len(missing)} lost, e.g. {[sent[n][0] for n in missing[:3]]}"
    assert not doubled, f"{len(doubled)} doubled, e.g. {doubled[:5]}"
    assert not problems, problems[:10]
    stats = bridge.final_stats()
    assert stats["received"] == len(sent) and stats["acked"] == len(sent)
    reasons = Counter(h.get("dlq_reason", b"-").decode() for _, _, _, h in got)
    print(f"fuzz: {len(sent)} messages, by reason: {dict(reasons)}")
    print(f"fuzz: generated and published in {published - began:.0f} s")
    # Bounded memory: after the first thousand, the bridge grows by less than 64 MiB however
    # many megabyte-sized payloads and property blocks pass through it.
    print("bridge RSS MiB after each 1000 published:", [r >> 20 for r in rss])
    assert max(rss) - rss[0] < 64 << 20, [r >> 20 for r in rss]
