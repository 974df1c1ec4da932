"""CLI: python -m core <command>. One module per group of commands, each with a COMMANDS table of
(add its parser, run it). Errors the user can fix print one line and exit non-zero."""
from __future__ import annotations

import argparse
import logging
import sys

from core.cli import decision, evaluation, models, operations, pretrain, sandbox, tracking
from core.base.errors import GateError

COMMANDS = {**evaluation.COMMANDS, **decision.COMMANDS, **models.COMMANDS, **operations.COMMANDS,
            **pretrain.COMMANDS, **sandbox.COMMANDS, **tracking.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="HRM-CodeGen Gate: evaluate, benchmark, "
                                     "test and gate code-generation models on MBPP.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command][1](args)
    except GateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
