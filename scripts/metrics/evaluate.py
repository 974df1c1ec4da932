#!/usr/bin/env python3
"""The seed's scripts/metrics/evaluate.py: `python -m core eval` (evaluate a model or samples file on MBPP). Same arguments."""
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[2])  # the repository, not this folder (its names shadow modules)
from core.cli import main  # noqa: E402

sys.exit(main(["eval", *sys.argv[1:]]))
