"""``python -m drills``: one command per drill, each with --help; the old stack commands point
at it with one line and exit 2."""

from __future__ import annotations

import pytest

from drills.__main__ import COMMANDS
from drills.__main__ import main as drills_main
from stack.__main__ import main as stack_main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_drill_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        drills_main([command, "--help"])
    assert done.value.code == 0
    assert f"python -m drills {command}" in capsys.readouterr().out


def test_no_command_or_an_unknown_one_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert drills_main([]) == 2
    assert drills_main(["rehearse"]) == 2
    assert "unknown command 'rehearse'" in capsys.readouterr().err
    assert drills_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


@pytest.mark.parametrize("command", ["demo", "chaos"])
def test_the_stack_commands_that_moved_name_their_new_home(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack_main([command, "--scenario", "smoke"]) == 2
    err = capsys.readouterr().err
    assert f"python -m drills {command}" in err and err.count("\n") == 1
