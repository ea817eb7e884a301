"""The one error type that stops devhost at startup with a message and a non-zero exit."""


class DevhostError(Exception):
    """A startup problem the developer must fix (bad settings file, no FunctionApp, ...)."""
