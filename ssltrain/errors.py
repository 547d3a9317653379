"""The one exception type that reaches the user as a one-line message."""


class UserError(Exception):
    """Bad input the user can fix: the message says what is wrong and what to do.

    The CLI prints it as one line and exits with status 2; anything else is a bug and
    keeps its traceback.
    """
