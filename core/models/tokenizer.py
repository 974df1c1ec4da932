"""The tokenizers our HRM uses: ours, GPT-2's, or a checkpoint's own tokenizer.json.

The presets (hrm:27m, hrm:tiny) pin ours, `hrm-bpe-16k` (16,384 tokens, the 27M preset's vocabulary),
whatever else this machine has cached. It is trained by scripts/train_tokenizer.py on MBPP's train
split and the Python standard library, and its JSON is committed beside this file. A checkpoint
names its tokenizer in config.json; a tokenizer.json in the checkpoint folder wins over that name.
GPT-2's comes from the Hugging Face hub as transformers fetches it (HF_HUB_OFFLINE=1 keeps it to
the local cache).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from core.base.errors import ModelSpecError

log = logging.getLogger(__name__)
OWN_BPE = Path(__file__).resolve().parent / "tokenizer" / "hrm-bpe-16k.json"
EOS = "<|endoftext|>"
PAD = "<|pad|>"
PINNED = "hrm-bpe-16k"  # the presets' tokenizer


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


def _own() -> Tokenizer:
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast(tokenizer_file=str(OWN_BPE), eos_token=EOS, pad_token=PAD, bos_token=EOS,
                                   unk_token=EOS)
    return Tokenizer("hrm-bpe-16k", fast)


def _gpt2() -> Tokenizer:
    from transformers import AutoTokenizer
    try:
        fast = AutoTokenizer.from_pretrained("gpt2")
    except (OSError, ValueError) as exc:
        raise ModelSpecError(f"GPT-2's tokenizer could not be loaded ({type(exc).__name__}): it is fetched from the "
                             "hub (not reachable, or HF_HUB_OFFLINE=1 and not in the local cache); use hrm-bpe-16k "
                             "or a tokenizer.json") from None
    if fast.pad_token is None:
        fast.pad_token = fast.eos_token
    return Tokenizer("gpt2", fast)


def _file(path: Path) -> Tokenizer:
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast(tokenizer_file=str(path))
    vocab = fast.get_vocab()
    eos = next((t for t in (EOS, "</s>", "<eos>", "[SEP]") if t in vocab), None)
    if eos is None:
        raise ModelSpecError(f"{path}: no end-of-text token ({EOS} or </s>) in this tokenizer")
    fast.eos_token = eos
    fast.pad_token = PAD if PAD in vocab else eos
    return Tokenizer(str(path), fast)


@lru_cache(maxsize=None)
def load_tokenizer(name: str | None = None) -> Tokenizer:
    """hrm-bpe-16k (the default, pinned by the presets), gpt2, or a tokenizer.json file."""
    name = name or PINNED
    if name == PINNED:
        return _own()
    if name == "gpt2":
        return _gpt2()
    if Path(name).is_file():
        return _file(Path(name))
    raise ModelSpecError(f"unknown tokenizer {name!r}; use hrm-bpe-16k, gpt2 or the path of a tokenizer.json")
