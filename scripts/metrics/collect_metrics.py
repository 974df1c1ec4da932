#!/usr/bin/env python3
"""The seed's scripts/metrics/collect_metrics.py: `python -m core collect` (aggregate a run directory into run_summary.json). Same arguments."""
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[2])  # the repository, not this folder (its names shadow modules)
from core.cli import main  # noqa: E402

sys.exit(main(["collect", *sys.argv[1:]]))
