"""Where a model runs and in which precision: `--device auto|cpu|cuda[:N]` and `--dtype auto|fp32|bf16|fp16`.

auto picks the first CUDA device when torch sees one, else the CPU; the auto dtype is bf16 on a GPU
that supports it (fp16 on one that does not) and fp32 on the CPU, where bf16 matmuls are slow and
change greedy outputs for no gain.
"""
from __future__ import annotations

import re

from core.base.errors import UsageError

DEVICES = "auto | cpu | cuda | cuda:N"
DTYPES = ("auto", "fp32", "bf16", "fp16")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(text: str) -> str:
    """The device text checked without importing torch (configs call this)."""
    if not _DEVICE.fullmatch(text or ""):
        raise UsageError(f"--device {text!r}: use {DEVICES}")
    return text


def resolve_device(text: str = "auto"):
    import torch
    check_device(text)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {text}: torch sees no CUDA device here; use --device cpu or auto")
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device(text)


def resolve_dtype(text: str, device):
    import torch
    if text not in DTYPES:
        raise UsageError(f"--dtype {text!r}: use one of {', '.join(DTYPES)}")
    if text == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[text]


def dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def sync(device) -> None:
    """Wait for queued GPU work so a wall-clock measurement covers it (nothing to do on the CPU)."""
    import torch
    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize(device)
