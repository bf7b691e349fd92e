"""The one exception the stack raises for failures a user can fix."""

from __future__ import annotations


class StackError(Exception):
    """A failure with a plain one-line explanation and what to do; printed without a traceback.

    ``exit_code`` is 2 for bad input (a wrong setting), 1 for everything else.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
