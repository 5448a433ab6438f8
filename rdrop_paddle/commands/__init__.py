"""The commands behind ``tools/*.py`` (and the ``rdrop-*`` console scripts): each module
is one command with ``build_parser()`` and ``run(args)``; :mod:`rdrop_paddle.cli` runs
them.  Library code lives in the other packages and never imports these."""
