"""Argument types and helpers the command modules share."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from core.base.config import parse_ints


k_values = parse_ints  # --k 1,10


def add_wandb_flag(p) -> None:
    p.add_argument("--wandb", choices=("auto", "off", "offline", "online"), default="auto",
                   help="W&B logging while the run goes: auto = online when WANDB_API_KEY is set, else none (default); "
                        "offline writes a local run to sync later")


def wandb_wanted(setting: str) -> bool:
    """A run logs to W&B only when asked, or when a key says the user has an account: W&B costs seconds
    of start-up that a user scoring a samples file did not ask for (the pipeline's W&B step is its own)."""
    return setting in ("offline", "online") or (setting == "auto" and bool(os.environ.get("WANDB_API_KEY")))


@contextlib.contextmanager
def tracked(run_dir, setting):
    """A live W&B run beside the job run inside (core.publish.live), when W&B is wanted."""
    if not wandb_wanted(setting) or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    from core.publish.live import INFO_FILE, start_follower, wait_follower
    proc = start_follower(run_dir, setting)
    try:
        yield
    finally:
        wait_follower(proc, run_dir)
    info_file = Path(run_dir) / INFO_FILE
    if info_file.exists():
        info = json.loads(info_file.read_text(encoding="utf-8"))
        print(f"  W&B ({info['mode']}, {info['status']}): {info['url'] or info['dir']}")
