"""Train the offline byte-level BPE tokenizer that our HRM uses when GPT-2's is not available.

Corpus: MBPP's train split (tasks 601-974: text, code, tests) plus the Python standard library
sources of the interpreter that runs this script. The result is committed as
core/models/tokenizer/hrm-bpe-16k.json; it was made with

    .venv/bin/python scripts/train_tokenizer.py --mbpp ../shared/data/mbpp/mbpp.jsonl

Test, validation and prompt tasks are left out of the corpus so the tokenizer has seen nothing
of what it is evaluated on.
"""
import argparse
import json
import sysconfig
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

OUT = Path(__file__).resolve().parent.parent / "core" / "models" / "tokenizer" / "hrm-bpe-16k.json"
SPECIAL = ["<|endoftext|>", "<|pad|>"]


def corpus(mbpp_path: Path):
    for line in mbpp_path.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        if 601 <= task["task_id"] <= 974:
            yield task["text"] + "\n" + task["code"] + "\n" + "\n".join(task["test_list"]) + "\n"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        try:
            yield path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbpp", type=Path, default=Path("../shared/data/mbpp/mbpp.jsonl"))
    parser.add_argument("--vocab-size", type=int, default=16384)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, special_tokens=SPECIAL, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(args.mbpp), trainer=trainer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(args.out))
    print(f"wrote {args.out} ({tok.get_vocab_size()} tokens)")


if __name__ == "__main__":
    main()
