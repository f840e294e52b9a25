"""The one exception type users see: a message that says what was wrong and what to do instead."""


class CondgenError(ValueError):
    """A learner-facing error; the CLI prints its message as one line and exits with status 2."""
