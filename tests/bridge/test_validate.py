"""The fast checker may refuse more than the contract, never accept what the contract refuses."""

import random

import pytest

import contract
from bridge.validate import compile_checkers
from tests.bridge.helpers import sample

CHECKERS = compile_checkers()
ODD_VALUES = [None, True, 0, -1, 1.5, 1e9, "", "x", "2026-11-23T08:00:00Z", [], {}, "petrol"]


def contract_ok(stream: contract.Stream, message: dict) -> bool:
    return not contract.validate(stream, message)


@pytest.mark.parametrize("stream", contract.ALL_STREAMS, ids=lambda s: s.name)
def test_fast_check_never_looser_than_contract(stream: contract.Stream) -> None:
    rng = random.Random(stream.name)
    good = sample(stream.name, "dev-1")
    assert CHECKERS[stream.name](good) and contract_ok(stream, good)
    for _ in range(3000):
        m = dict(good)
        for _ in range(rng.randint(1, 3)):
            name = rng.choice([*stream.field_names, "bogus"])
            action = rng.random()
            if action < 0.15:
                m.pop(name, None)
            else:
                m[name] = rng.choice([*ODD_VALUES, good.get(name)])
        if CHECKERS[stream.name](m):
            assert contract_ok(stream, m), m
