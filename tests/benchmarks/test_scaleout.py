"""The scale-out stage's pure parts: the per-core extrapolation and the topology check."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.cpu import extrapolate, net_of_idle
from benchmarks.scaleout import cpu_note, main, require_cluster_topology, scaled_row
from cityconf.errors import UserError


def test_the_per_core_rate_is_messages_over_every_parts_cpu() -> None:
    # 1,000 messages for 0.1 s of CPU in all: 10,000 msg/s from one core, 80,000 from eight
    ahead = extrapolate({"bridge": 0.06, "kafka": 0.04}, 1_000, 8)
    assert ahead.per_core == pytest.approx(10_000)
    assert ahead.linear == pytest.approx(80_000)
    assert ahead.expected == pytest.approx(80_000) and ahead.caps == {}
    assert "assuming linear scaling per process" in ahead.note()


def test_a_part_that_is_one_process_caps_the_extrapolation_at_its_one_core() -> None:
    # Mosquitto at 0.02 s for 1,000 messages fills its one core at 50,000 msg/s
    ahead = extrapolate({"bridge": 0.06, "kafka": 0.02, "mosquitto": 0.02}, 1_000, 8, ["mosquitto"])
    assert ahead.linear == pytest.approx(80_000)
    assert ahead.caps == {"mosquitto": pytest.approx(50_000)}
    assert ahead.expected == pytest.approx(50_000)
    assert "mosquitto is one process: at most 50,000 msg/s" in ahead.note()


def test_no_cpu_measured_extrapolates_to_nothing_rather_than_dividing_by_zero() -> None:
    ahead = extrapolate({"devices": 0.0, "mosquitto": 0.0}, 1_000, 8, ["mosquitto"])
    assert (ahead.per_core, ahead.expected, ahead.caps) == (0.0, 0.0, {})


def test_the_note_names_each_parts_cost_and_the_cores_it_extrapolates_to() -> None:
    note = cpu_note({"bridge": 0.03, "mosquitto": 0.01}, 1_000)
    assert "bridge 30 µs, mosquitto 10 µs" in note
    assert "on 8 cores" in note and "cores allow ≤" in note


def test_what_the_servers_spend_idle_over_the_same_window_is_charged_to_no_message() -> None:
    # three brokers at 0.15 CPU s a second idle, over a 10 s window: 1.5 of their 2.0 s
    net = net_of_idle({"kafka": 2.0, "bridge": 0.5}, {"kafka": 0.15}, 10.0)
    assert net == {"kafka": pytest.approx(0.5), "bridge": 0.5}
    assert net_of_idle({"kafka": 1.0}, {"kafka": 0.2}, 10.0) == {"kafka": 0.0}  # never below 0


def test_one_process_stands_beside_mosquitto_and_the_others_beside_one_process() -> None:
    one = scaled_row("x, 1 process", 1, 900.0, 900.0, 6_000.0, "n")
    assert one["reference_value"] == 6_000.0 and one["note"] == "n"
    three = scaled_row("x, 3 processes", 3, 1_350.0, 900.0, 6_000.0, "n")
    assert (three["reference"], three["ratio"]) == ("1 process, same run", 1.5)
    assert three["note"].startswith("1.50x 1 process; ")


def test_only_the_cluster_topology_passes() -> None:
    require_cluster_topology({"CITYFLEET_TOPOLOGY": "cluster"})
    for env in ({}, {"CITYFLEET_TOPOLOGY": "single"}):
        with pytest.raises(UserError) as err:
            require_cluster_topology(env)
        assert err.value.exit_code == 2 and "make up TOPOLOGY=cluster" in str(err.value)


def test_on_the_single_topology_the_command_says_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYFLEET_ENV_FILE", str(tmp_path / ".env"))  # no stack's .env
    monkeypatch.setenv("CITYFLEET_TOPOLOGY", "single")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make up TOPOLOGY=cluster" in err
    assert "Traceback" not in err
