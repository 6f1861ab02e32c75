"""Errors that end the daemon with one line on stderr and exit code 2."""


class FatalError(Exception):
    """A condition the user must fix; str(exc) says what to do."""
