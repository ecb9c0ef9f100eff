"""The exceptions that end a run with a status other than "internal error".

The CLI maps them to exit statuses (see ``edgegen.cli``): ``UserError`` is
bad input or environment (2, one line, no traceback), ``VerificationFailure``
a C output that differs from the golden model's or a C that misbehaves (1),
``Terminated`` a SIGINT, SIGTERM or SIGHUP (128 + signal). Anything else escaping is
a bug in edgegen (3, with its traceback).
"""


class UserError(Exception):
    """Bad input: the message names the problem and what to do about it."""


class VerificationFailure(Exception):
    """The C under test did something the golden model does not allow (a
    non-zero return, a write outside its buffers)."""


class Terminated(BaseException):
    """SIGINT, SIGTERM or SIGHUP, raised in the main thread so that every
    cleanup (``finally``, ``except BaseException``) runs (see ``interrupts``)."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def brief(value) -> str:
    """A value from a user's file as a message shows it: its repr (no raw
    line breaks or control characters), cut short, since a damaged file can
    hold a megabyte where a name should be."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
