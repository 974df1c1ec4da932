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


def _add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="compute-matched HRM vs GPT-2: corpus -> both pretrainings at equal FLOPs "
                                          "-> MBPP eval of both -> stats -> gate (resumable)")
    p.add_argument("--config", required=True, metavar="FILE", help="configs/compute-matched-*.toml")
    p.add_argument("--redo", metavar="STEPS", help="steps to run again although their outputs are there: "
                                                    "collect, decide, publish, wandb, report, alerts")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def _cmd_experiment(args) -> int:
    from core.flow.experiment import Experiment, load_experiment
    from core.flow.pipeline import format_summary, parse_redo
    exp, cfg = load_experiment(args.config)
    run = Experiment(exp, cfg, redo=parse_redo(args.redo), progress=args.progress)
    try:
        run.run()
    finally:
        print(format_summary(run).replace("pipeline ", "experiment ", 1))
    return 0  # every step ran: the verdict is a finding (stats.json, experiment.json), not a failure


COMMANDS = {"corpus": (_add_corpus, _cmd_corpus), "experiment": (_add_experiment, _cmd_experiment)}
