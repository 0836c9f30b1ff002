"""How a command fails: one line on stderr and an exit code, no traceback for what users fix."""

from __future__ import annotations

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_USAGE", "CommandError", "one_line"]

EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad configuration or a part that does not exist: the user has to act
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure explained in one line; main() prints it without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: object) -> str:
    """Text as a single line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(str(text).split())
