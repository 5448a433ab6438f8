"""The exceptions a tool reports as one line.

Tools print the message as a single ``error: ...`` line and exit non-zero: 2 for bad
input (a missing or hostile file, a bad config value), 1 for a run that cannot go on
(a diverged loss, a failing data loader).  Anything else is a bug and keeps its traceback.
"""


class UserInputError(ValueError):
    """Bad input from the user; the message names the offending path, key or shape.  It is
    kept to one line (an embedded library message's line breaks become spaces)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class UnsafeFileError(UserInputError):
    """A file whose pickle would call something other than the allowed array builders."""


class TrainingDiverged(RuntimeError):
    """Non-finite loss, weights or evaluation; nothing non-finite was saved."""


class RankFailed(RuntimeError):
    """Another rank of a data-parallel run failed; the message names it and its error."""


class DataLoadingError(RuntimeError):
    """The data set, sampler or a DataLoader worker failed; the message carries its error."""
