"""The lab's run kinds, each setting declared once (see core.base.config): TrainConfig and BenchConfig.
Kept apart from the runners so that the CLI builds its flags without importing torch."""
from __future__ import annotations

from dataclasses import dataclass

from core.base.config import setting, validate
from core.base.settings import MBPP_PATH


@dataclass
class TrainConfig:
    """Every setting of a training run: `python -m core train` flags, the pipeline's [train] table and the
    app's launch form all come from here."""
    model: str = setting(help="hrm:27m, hrm:tiny, hrm:PATH, hf:DIR or hf-arch:NAME")
    run_dir: str = setting(help="run directory", cli=False, table=None)
    dataset: str = setting("mbpp", "mbpp | mbpp-sanitized", table="pipeline")
    data_path: str | None = setting(None, "the dataset's published file", table="pipeline", metavar="FILE")
    prompt: str | None = setting(None, "mbpp-3shot (default) | mbpp-docstring")
    steps: int = setting(1000, "optimizer steps", form="Steps (train)", minimum=1)
    batch: int = setting(8, "global batch in sequences", minimum=1)
    seq_len: int = setting(512, "tokens per sequence", minimum=2)
    lr: float = setting(3e-4, "peak learning rate", minimum=0)
    min_lr_ratio: float = setting(0.1, "final learning rate as a fraction of the peak (cosine)", minimum=0)
    warmup: int = setting(50, "linear warm-up steps", minimum=0)
    weight_decay: float = setting(0.1, "AdamW weight decay", minimum=0)
    grad_clip: float = setting(1.0, "gradient norm clip", minimum=0)
    seed: int = setting(0, "initialisation and data-order seed")
    checkpoint_every: int = setting(50, "steps between checkpoints (0: never)", minimum=0)
    eval_every: int = setting(0, "validation loss every N steps (0: never)", minimum=0)
    val_batches: int = setting(2, "validation batches per evaluation", minimum=1)
    pass_every: int = setting(0, "pass@1 on the validation split every N steps: greedy completions of the model as "
                                 "it is, scored in the sandbox (0: never; minutes per evaluation on a CPU)", minimum=0)
    pass_tasks: int = setting(20, "validation tasks of that pass@1 (the split's first N)", minimum=1)
    pass_new_tokens: int = setting(256, "new tokens per completion in that pass@1", minimum=1)
    segments: int | None = setting(None, "HRM deep-supervision segments (default: the preset's)", minimum=1)
    precision: str = setting("auto", "auto: bf16 autocast where the GPU supports it, else fp32",
                             choices=("auto", "fp32", "bf16"))
    threads: int | None = setting(None, "torch CPU threads (default: torch's choice)", minimum=1)
    corpus: str | None = setting(None, "pretrain on this corpus folder (`python -m core corpus`) instead of MBPP",
                                 metavar="DIR")
    flops: float | None = setting(None, "training FLOPs budget (corpus): steps = budget / the FLOPs of one step, "
                                        "measured on a real step; overrides --steps", minimum=1)
    accum: int = setting(1, "gradient accumulation: micro-batches per optimizer step (corpus)", minimum=1)
    log_every: int = setting(1, "steps between metrics lines, each a host sync (corpus; raise it on a GPU)",
                             minimum=1)
    compile: bool = setting(False, "torch.compile the model (corpus)")
    peak_tflops: float | None = setting(None, "peak dense TFLOPS per device for MFU (default: looked up from the "
                                              "GPU's name; none on CPU)", minimum=0)

    def __post_init__(self):
        validate(self)


@dataclass
class BenchConfig:
    """Every setting of the efficiency benchmark: `python -m core bench` flags, the pipeline's [bench] table
    and the app's launch form all come from here. Definitions of the figures: DESIGN.md and core.lab.bench."""
    models: list[str] = setting(help="model specs measured side by side, candidate first, baseline last "
                                     "(pipeline default: the candidate and the baseline)",
                                cli=False, factory=list)
    out: str | None = setting(None, "write bench.json here", table=None, metavar="FILE")
    repeats: int = setting(5, "latency rounds after a warm-up round (3 passes per model each)",
                           form="Latency rounds (bench)", minimum=1)
    throughput_repeats: int = setting(5, "throughput rounds after a warm-up round", minimum=1)
    train_steps: int = setting(2, "steps of the training loop whose peak RSS is measured", minimum=1)
    skip_train: bool = setting(False, "leave peak training RAM unmeasured", form="Skip peak training RAM (bench)")
    data_path: str = setting(MBPP_PATH, "MBPP file for the training loop's data", table="pipeline", metavar="FILE")
    new_tokens: int = setting(256, "new tokens per sequence in the throughput figure", form="New tokens (bench)",
                              minimum=1)
    seq_len: int = setting(512, "tokens of the latency input and of the training sequences", minimum=2)
    batch: int = setting(8, "batch of the throughput figure and of the training loop", minimum=1)
    threads: int | None = setting(None, "torch CPU threads, recorded in bench.json (default: torch's choice)",
                                  minimum=1)
    device: str = setting("cpu", "cpu: the KPI's device alone; cuda[:N] or auto (a GPU where present): the same "
                                 "figures on the GPU too, as an extra labelled column")
    dtype: str = setting("auto", "precision of the GPU column: auto (bf16 where supported) | fp32 | bf16 | fp16",
                         choices=("auto", "fp32", "bf16", "fp16"))

    def __post_init__(self):
        validate(self)
        from core.models.device import check_device
        check_device(self.device)


@dataclass
class CorpusConfig:
    """Every setting of `python -m core corpus` (and of an experiment's [corpus] table)."""
    out: str = setting(help="corpus directory (train.bin, val.bin, manifest.json)", table=None, metavar="DIR")
    roots: list[str] = setting(help="folders searched for .py files (default: this interpreter's standard library "
                                    "and site-packages)", flag="--root", factory=list)
    max_bytes: int = setting(200_000, "files larger than this are dropped as oversized", minimum=1)
    min_bytes: int = setting(64, "files smaller than this are dropped as empty", minimum=0)
    max_files: int | None = setting(None, "keep at most this many files (a hash-ordered sample; for small scales)",
                                    minimum=1)
    near_dup: float = setting(0.85, "estimated line-set Jaccard similarity at which a file is a near duplicate",
                              minimum=0)
    val_fraction: float = setting(0.02, "fraction of files (by content hash) held out for validation", minimum=0)
    data_path: str | None = setting(None, "MBPP file whose test and validation splits are decontaminated against",
                                    metavar="FILE")
    tokenizer: str | None = setting(None, "gpt2 | hrm-bpe-16k (default: the HRM's tokenizer on this machine)")
    workers: int | None = setting(None, "tokenizer processes (default: the CPU count)", minimum=1)
    progress: bool = setting(True, "progress bar on stderr", flag="--progress", cli=False, table=None)

    def __post_init__(self):
        validate(self)
