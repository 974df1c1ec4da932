"""The tokenizer our HRM uses: GPT-2's where it is on this machine, else our own byte-level BPE.

GPT-2's comes from the local Hugging Face cache (never fetched at run time: set
HRM_GATE_HF_ONLINE=1 to let transformers download it). Ours, `hrm-bpe-16k`, is trained by
scripts/train_tokenizer.py on MBPP's train split and the Python standard library, and its JSON
is committed beside this file. HRM_GATE_TOKENIZER=gpt2|hrm-bpe-16k picks one explicitly.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from core.base.errors import ModelSpecError

log = logging.getLogger(__name__)
OWN_BPE = Path(__file__).resolve().parent / "tokenizer" / "hrm-bpe-16k.json"
EOS = "<|endoftext|>"
PAD = "<|pad|>"


class Tokenizer:
    """encode/decode over either backend, plus a transformers view for save_pretrained."""

    def __init__(self, name: str, fast):
        self.name = name
        self.fast = fast  # a transformers PreTrainedTokenizerFast

    @property
    def vocab_size(self) -> int:
        return len(self.fast)

    @property
    def eos_id(self) -> int:
        return self.fast.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self.fast.encode(text, add_special_tokens=False)

    def decode(self, ids) -> str:
        return self.fast.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _hf_online() -> bool:
    return os.environ.get("HRM_GATE_HF_ONLINE") == "1"


def _own() -> Tokenizer:
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast(tokenizer_file=str(OWN_BPE), eos_token=EOS, pad_token=PAD, bos_token=EOS,
                                   unk_token=EOS)
    return Tokenizer("hrm-bpe-16k", fast)


def _gpt2() -> Tokenizer | None:
    from transformers import AutoTokenizer
    try:
        fast = AutoTokenizer.from_pretrained("gpt2", local_files_only=not _hf_online())
    except (OSError, ValueError):
        return None
    if fast.pad_token is None:
        fast.pad_token = fast.eos_token
    return Tokenizer("gpt2", fast)


@lru_cache(maxsize=None)
def load_tokenizer(name: str | None = None) -> Tokenizer:
    name = name or os.environ.get("HRM_GATE_TOKENIZER")
    if name in (None, "gpt2"):
        tok = _gpt2()
        if tok is not None:
            return tok
        if name == "gpt2":
            raise ModelSpecError("GPT-2's tokenizer is not in the local Hugging Face cache; set HRM_GATE_HF_ONLINE=1 "
                                 "where the hub is reachable, or HRM_GATE_TOKENIZER=hrm-bpe-16k")
        log.debug("GPT-2's tokenizer is not available offline; using our byte-level BPE (hrm-bpe-16k)")
    elif name != "hrm-bpe-16k":
        raise ModelSpecError(f"unknown tokenizer {name!r}; use gpt2 or hrm-bpe-16k")
    return _own()
