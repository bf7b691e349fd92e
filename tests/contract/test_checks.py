"""The compiled check may refuse more than the full explanation, never accept what it refuses."""

from __future__ import annotations

import dataclasses
import random

import orjson
import pytest

import contract
from contract import GPS, ContractError, Stream, decode, decode_payload, validate
from contract.checks import compile_check, explain
from tests.contract.helpers import sample

ODD_VALUES = [None, True, 0, -1, 1.5, 1e9, "", "x", "2026-11-23T08:00:00Z", [], {}, "petrol"]


def mutants(stream: Stream, n: int = 3000) -> list[dict]:
    """A valid message with one to three fields dropped, retyped or added, ``n`` times."""
    rng = random.Random(stream.name)
    good = sample(stream, "dev-1")
    out = []
    for _ in range(n):
        m = dict(good)
        for _ in range(rng.randint(1, 3)):
            name = rng.choice([*stream.field_names, "bogus"])
            if rng.random() < 0.15:
                m.pop(name, None)
            else:
                m[name] = rng.choice([*ODD_VALUES, good.get(name)])
        out.append(m)
    return out


@pytest.mark.parametrize("stream", contract.ALL_STREAMS, ids=lambda s: s.name)
def test_compiled_check_never_looser_than_the_explanation(stream: Stream) -> None:
    check = compile_check(stream)
    good = sample(stream, "dev-1")
    assert check(good) and explain(stream, good) == []
    accepted = 0
    for m in mutants(stream):
        if check(m):
            accepted += 1
            assert explain(stream, m) == [], m
        # validate is the one public answer: the compiled check only makes it faster.
        assert validate(stream, m) == explain(stream, m), m
    assert accepted  # the fuzz reaches the accepting side too (a mutant may keep good values)


def test_the_explanation_has_the_last_word() -> None:
    """A UUID in a form the compiled check does not know is still valid, as uuid.UUID says."""
    msg = sample(GPS)
    msg["id"] = "{" + msg["id"] + "}"
    assert not compile_check(GPS)(msg)
    assert validate(GPS, msg) == []
    assert decode("city/gps/car-1", orjson.dumps(msg))[2] == msg


def test_a_stream_built_elsewhere_gets_its_own_check() -> None:
    narrower = dataclasses.replace(GPS, fields=GPS.fields[:-1])  # same name, one field fewer
    msg = sample(GPS)
    assert validate(GPS, msg) == []
    assert validate(narrower, msg) == ["satellites: unknown field"]
    assert validate(GPS, msg) == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"id": ', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"device_id": "car-1"}', "schema"),
        (b" " * (contract.MAX_PAYLOAD_BYTES + 1), "oversize"),
        (orjson.dumps(sample(GPS, "car-2")), "device_mismatch"),
    ],
)
def test_decode_payload_names_the_same_reason_as_decode(payload: bytes, reason: str) -> None:
    for call in (
        lambda: decode("city/gps/car-1", payload),
        lambda: decode_payload(GPS, "car-1", payload),
    ):
        with pytest.raises(ContractError) as info:
            call()
        assert info.value.reason == reason
