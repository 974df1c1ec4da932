"""EvalConfig: every setting of an evaluation run, declared once (see core.base.config). Kept apart from
the runner so that the CLI can build its flags without importing what an evaluation needs."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.base.config import setting, validate
from core.base.errors import UsageError
from core.models.device import check_device


@dataclass
class EvalConfig:
    """Every setting of an eval run: `python -m core eval` flags, the pipeline's [pipeline] (shared) and
    [candidate]/[baseline] (per side) keys, and the app's launch form all come from here."""
    run_dir: str = setting(help="run directory (e.g. cache/runs/NAME)", cli=False, table=None)
    dataset: str = setting("mbpp", "mbpp | mbpp-sanitized | humaneval-jsonl | mbpp-typed (MultiPL-E's, for imported generations)", table="pipeline")
    data_path: str | None = setting(None, "the dataset's published file; without it MBPP is downloaded once into "
                                          "cache/datasets/", table="pipeline", metavar="FILE")
    split: str = setting("test", "prompt | test | validation | train | all", table="pipeline")
    model: str | None = setting(None, "model spec: oracle, hrm:27m, hrm:tiny, hrm:PATH, hf:NAME_OR_PATH, "
                                      "hf-arch:NAME, openai:URL#MODEL", cli=False, table="side")
    samples: str | None = setting(None, "score completions generated elsewhere (JSONL: task_id, completion; "
                                        "several per task allowed)", cli=False, table="side", metavar="FILE")
    # The protocol (core.evaluation.protocol): the pipeline holds it once, in [pipeline], for both sides.
    n: int = setting(1, "samples per task", table="pipeline", form="Samples per task (eval)", minimum=1)
    temperature: float = setting(0.0, "sampling temperature (0: greedy)", table="pipeline", form="Temperature (eval)",
                                 minimum=0)
    top_p: float = setting(1.0, "nucleus sampling mass (no top-k for any model)", table="pipeline", form="Top-p (eval)",
                           minimum=0)
    max_new_tokens: int = setting(256, "new tokens per sample at most (MBPP's reference solutions: 99 in 100 under "
                                       "250 tokens)",
                                  table="pipeline", form="Max new tokens (eval)", minimum=1)
    context_window: int = setting(1024, "tokens of prompt + new tokens every model works in (GPT-2's 1,024): a "
                                        "longer prompt keeps its last tokens, and the run counts it", table="pipeline",
                                  minimum=2)
    ks: tuple[int, ...] = setting((1, 10), "pass@k to report, e.g. 1,10 (a k above n is left out)", flag="--k",
                                  table="pipeline")
    prompt: str | None = setting(None, "mbpp-3shot | mbpp-docstring (MBPP; default mbpp-3shot) or humaneval",
                                 table="pipeline")
    timeout: float = setting(10.0, "seconds per sample", table="pipeline", minimum=0.1)
    workers: int = setting(2, "sandbox workers", table="pipeline", minimum=1)
    limit: int | None = setting(None, "only the first N tasks of the split", table="pipeline",
                                form="Tasks (eval)", minimum=1)
    challenge_tests: bool = setting(False, "also run MBPP's challenge_test_list", table="pipeline")
    seed: int = setting(0, "sampling seed", table="pipeline")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N: where local models run", table="pipeline")
    dtype: str = setting("auto", "auto (bf16 on a GPU that supports it, else fp32) | fp32 | bf16 | fp16",
                         table="pipeline", choices=("auto", "fp32", "bf16", "fp16"))
    batch: int = setting(8, "tasks generated together by a local model (greedy output does not depend on it)",
                         table="pipeline", minimum=1)
    progress: bool = True
    extra_manifest: dict = field(default_factory=dict)

    def __post_init__(self):
        validate(self)
        check_device(self.device)
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise UsageError(f"ks (flag --k) must be whole numbers >= 1, e.g. 1,10; got {list(self.ks)}")
        if self.model and self.model != "oracle" and self.n > 1 and self.temperature == 0:
            raise UsageError(f"--n {self.n} at temperature 0 gives {self.n} identical greedy samples per task; use "
                             "--n 1 for greedy pass@1, or sample (e.g. --temperature 0.8 --top-p 0.95) for pass@k")


@dataclass
class SampledConfig:
    """The pipeline's second protocol, its [sampled] table: pass@10 (and a sampled pass@1, shown labelled and
    not used for the verdict) from n samples per task at a temperature, while pass@1 and the gate's primary
    KPI come from [pipeline]'s protocol (greedy n = 1 by default). Only the sampling differs: the prompt,
    window, max_new_tokens, seed, timeout and data are [pipeline]'s, so both pairs see the same prompts."""
    enabled: bool = setting(True, "run the sampled pair (eval-candidate-sampled, eval-baseline-sampled); off: "
                                  "pass@10 is not measured", cli=False)
    n: int = setting(10, "samples per task of the sampled runs (pass@k needs n >= k)", cli=False, minimum=1)
    temperature: float = setting(0.8, "sampling temperature of the sampled runs", cli=False, minimum=0)
    top_p: float = setting(0.95, "nucleus sampling mass of the sampled runs (no top-k for any model)", cli=False,
                           minimum=0)

    def __post_init__(self):
        validate(self)
        if self.enabled and self.n > 1 and self.temperature == 0:
            raise UsageError(f"[sampled] n = {self.n} at temperature 0 gives {self.n} identical greedy samples per "
                             "task; set temperature (e.g. 0.8) or n = 1")

    def protocol(self) -> dict:
        """The EvalConfig settings the sampled runs change ([pipeline]'s otherwise)."""
        return {"n": self.n, "temperature": self.temperature, "top_p": self.top_p}
