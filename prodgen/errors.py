"""Errors a user can act on. The CLI turns them into a message and exit code 2."""


class ProdgenError(Exception):
    """A problem with the user's input or environment, explained in plain words."""

    exit_code = 2
