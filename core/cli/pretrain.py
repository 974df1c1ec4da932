"""Pretraining on real Python: corpus, experiment."""
from __future__ import annotations

from core.base.config import add_arguments, from_args
from core.lab.config import CorpusConfig


def _add_corpus(sub) -> None:
    p = sub.add_parser("corpus", help="build a pretraining corpus from this machine's Python sources",
                       description="Collects .py files (standard library and site-packages by default), drops "
                                   "duplicates, generated, oversized and MBPP-contaminated files, splits train/val by "
                                   "content hash and packs the tokens into DIR/train.bin and DIR/val.bin.")
    add_arguments(p, CorpusConfig)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _cmd_corpus(args) -> int:
    from core.lab.corpus import build_corpus
    m = build_corpus(from_args(CorpusConfig, args, progress=args.progress))
    s = m["splits"]
    print(f"corpus {args.out}: {m['files_kept']} of {m['files_found']} files kept, {s['train']['tokens']:,} train + "
          f"{s['val']['tokens']:,} val tokens ({m['tokenizer']}), dropped {m['dropped']} "
          f"(MBPP decontamination: {m['decontamination']['dropped']}), {m['build_seconds']} s")
    return 0


COMMANDS = {"corpus": (_add_corpus, _cmd_corpus)}
