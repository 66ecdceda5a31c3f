"""The one exception type that users see as a one-line message (exit code 2 on the CLI)."""


class BirthlensError(Exception):
    """A problem with the user's input: bad spec, bad option, corrupt file.

    The CLI prints ``error: <message>`` and exits with code 2, with no traceback.
    """
