#!/usr/bin/env python3
"""The seed's scripts/metrics/reliability_monitor.py: `python -m core monitor` (reliability monitor beside a job). Same arguments."""
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[2])  # the repository, not this folder (its names shadow modules)
from core.cli import main  # noqa: E402

sys.exit(main(["monitor", *sys.argv[1:]]))
