"""The one exception type that reaches the user as a one-line message."""


class UserError(Exception):
    """Bad input the user can fix: the message says what is wrong and what to do.

    The CLI prints it as one line and exits with status 2; anything else is a bug and
    keeps its traceback.
    """


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{key}={value!r} is not valid; choose one of: {', '.join(choices)}")


def check_positive(key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{key}={value} must be {'>= 0' if allow_zero else '> 0'}")


class Stopped(UserError):
    """Pretraining stopped on request (Ctrl-C, SIGTERM) after saving a checkpoint."""
