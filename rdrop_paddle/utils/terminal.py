"""What reaches a terminal: text from files and users shown with the characters a terminal
would act on (escape sequences, NUL, a newline that could forge an ``error:`` line, lone
surrogates that cannot even be encoded) escaped, as Python's ``repr`` writes them."""
from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every non-printable character written as its escape (``\\x1b``, ``\\n``)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
