"""The commands behind ``tools/*.py`` (and the ``rdrop-*`` console scripts): each module
is one command's ``run(args)``, its parser is in :mod:`~rdrop_paddle.commands.arguments`,
and :mod:`rdrop_paddle.cli` runs them.  Library code lives in the other packages and never
imports these."""
