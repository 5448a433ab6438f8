"""The exceptions a tool reports as one line: bad user input and a diverged run.

Tools print their message as a single ``error: ...`` line and exit non-zero
(2 for bad input, 1 for a diverged run); anything else is a bug and keeps its
traceback.
"""


class UserInputError(ValueError):
    """Bad input from the user; the message names the offending path, key or shape."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last saved checkpoint is left untouched."""
