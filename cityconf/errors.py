"""The one error type for failures a user can fix: a wrong setting, a server that is not up.

Every command's ``main()`` catches ``UserError``, prints its message as one line (no traceback)
and exits with its ``exit_code``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

BAD_INPUT = 2
"""Exit code of bad input: a wrong option, setting or file."""
FAILED = 1
"""Exit code of a failure the message explains (a server not answering, a job that failed)."""


class UserError(Exception):
    """A failure with a plain one-line explanation and what to do; printed without a traceback.

    ``exit_code`` is ``BAD_INPUT`` (2) for bad input and ``FAILED`` (1) for everything else; the
    default is 1 because most raisers report a failure of the run, not of its input.
    """

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def line(self) -> str:
        """What the command prints: one line, no traceback."""
        return f"error: {self}"


def guarded(body: Callable[[], int | None], interrupted: str = "interrupted") -> int:
    """Run a command's body: a ``UserError`` becomes its one line on stderr and its exit code,
    Ctrl-C a short note and 130; anything else is a bug and keeps its traceback."""
    try:
        return int(body() or 0)
    except UserError as exc:
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
