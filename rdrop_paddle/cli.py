"""Command-line plumbing shared by the tools: ``-c CONFIG -o Section.key=value``."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from rdrop_paddle.config import Config, load_config
from rdrop_paddle.errors import TrainingDiverged, UserInputError


def config_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable), e.g. -o Global.max_steps=10")
    return parser


def run(main: Callable[[], object]) -> None:
    """Run ``main``; bad input (exit 2) or divergence (exit 1) becomes one ``error:`` line."""
    try:
        main()
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def config_main(description: str, task: Callable[[Config], object],
                argv: Optional[Sequence[str]] = None) -> None:
    """Parse ``-c``/``-o``, load the typed config and call ``task(cfg)``."""
    args = config_parser(description).parse_args(argv)
    run(lambda: task(load_config(args.config, args.override)))
