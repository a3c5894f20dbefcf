"""The one exception type for mistakes a user can make (bad names, files, values)."""

from __future__ import annotations


class UserInputError(ValueError):
    """A one-line, user-facing error: names the bad value and the valid choices.

    The CLI prints it without a traceback and exits 2. It subclasses ValueError so
    library callers that catch ValueError keep working.
    """


def choices_error(what: str, value: object, valid: "list[str] | tuple[str, ...]") -> UserInputError:
    """Build the standard 'unknown X; valid choices: ...' error."""
    shown = ", ".join(str(v) for v in valid)
    return UserInputError(f"unknown {what} {value!r}; valid choices: {shown}")
