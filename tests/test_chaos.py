"""The fault drill, shortened: every component killed or restarted under load, nothing lost.

This is `make chaos --quick` run as a test: a device reboot, `kill -9` of the bridge, a Mosquitto
restart, a Kafka restart and `kill -9` of the streaming job, on private Mosquitto and Kafka
instances and a fresh lake root. The drill's own audit reads silver back and must find every
published (device_id, stream, seq) exactly once.
"""

from __future__ import annotations

import pytest

from stack import chaos

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_quick_fault_drill_loses_and_duplicates_nothing(stack_env, capsys):
    assert chaos.main(["--quick"], env=stack_env) == 0
    out = capsys.readouterr().out
    assert "chaos: OK: 0 missing, 0 duplicated in silver" in out
