"""The one exception type for problems the user can fix.

The CLI prints its message (no traceback) and exits with status 2; anything
else escaping is a bug in edgegen and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message names the problem and what to do about it."""
