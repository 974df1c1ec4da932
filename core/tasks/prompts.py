"""Prompt templates and their stop sequences.

- `mbpp-3shot`: the MBPP paper's prompt, with tasks 2, 3 and 4 as shots; the model writes code
  after [BEGIN] and stops at [DONE].
- `mbpp-docstring`: the zero-shot prompt of bigcode-evaluation-harness (InCoder style): the task
  text and one test inside a docstring, with that harness's stop sequences.
- `humaneval`: a HumanEval-format (or MultiPL-E typed MBPP) task's own prompt (signature and docstring).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.tasks.data import Dataset, Task
from core.base.errors import DataError

MBPP_3SHOT_STOP = ("[DONE]",)
BIGCODE_MBPP_STOP = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")
HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


@dataclass(frozen=True)
class Template:
    name: str
    stop: tuple[str, ...]

    def render(self, task: Task, dataset: Dataset) -> str:
        if self.name == "mbpp-3shot":
            if len(dataset.shots) < 3:
                raise DataError("the mbpp-3shot prompt needs MBPP tasks 2, 3 and 4 in the data file")
            shots = "".join(f"{_mbpp_task_block(s)}[BEGIN]\n{s.reference.strip()}\n[DONE]\n\n" for s in dataset.shots)
            return f"{shots}{_mbpp_task_block(task)}[BEGIN]\n"
        if self.name == "mbpp-docstring":
            return f'"""\n{task.description.strip()}\n{task.tests[0]}\n"""\n'
        return task.description


def _mbpp_task_block(task: Task) -> str:
    tests = "\n".join(task.tests)
    return (f"You are an expert Python programmer, and here is your task: {task.description.strip()} "
            f"Your code should pass these tests:\n\n{tests}\n")


TEMPLATES = {
    "mbpp-3shot": Template("mbpp-3shot", MBPP_3SHOT_STOP),
    "mbpp-docstring": Template("mbpp-docstring", BIGCODE_MBPP_STOP),
    "humaneval": Template("humaneval", HUMANEVAL_STOP),
}


OWN_PROMPT_DATASETS = ("humaneval-jsonl", "mbpp-typed")  # each task carries its prompt


def get_template(name: str | None, dataset_name: str) -> Template:
    own_prompt = dataset_name in OWN_PROMPT_DATASETS
    if name is None:
        name = "humaneval" if own_prompt else "mbpp-3shot"
    if name not in TEMPLATES:
        raise DataError(f"unknown --prompt {name!r}; choose one of {', '.join(TEMPLATES)}")
    if (name == "humaneval") != own_prompt:
        raise DataError(f"--prompt {name} does not fit --dataset {dataset_name}")
    return TEMPLATES[name]


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut a generation at the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
