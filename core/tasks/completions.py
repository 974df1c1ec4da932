"""Completion clean-up: what a model wrote, made into the program the task's tests run.

Cut at the first stop sequence (the one stop-cutting function: models use it while decoding too),
then, for MBPP, keep imports, definitions and assignments and drop what a model writes around the
solution (prints, asserts, calls of its own). HumanEval bodies continue the prompt's signature and
are only cut.
"""
from __future__ import annotations

import ast
import builtins

from core.tasks.data import Task

DESCRIPTION = "cut at the first stop sequence; keep imports, functions, classes and assignments (drop top-level calls)"


def cut_at_stop(text: str, stop) -> tuple[str, bool]:
    """The text before the first stop sequence, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


def entry_point(task: Task) -> str | None:
    """The function the tests call: HumanEval's entry_point, or the first non-builtin name called in
    MBPP's first assert."""
    if task.entry_point:
        return task.entry_point
    for test in task.tests[:1]:
        try:
            tree = ast.parse(test)
        except SyntaxError:
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not hasattr(builtins, node.func.id):
                return node.func.id
    return None


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except SyntaxError:
        return False


def _largest_parsable_prefix(code: str) -> str | None:
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        if _parses(candidate):
            return candidate
    return None


def keep_definitions(code: str, name: str | None) -> str:
    """Keep imports, definitions and assignments; code that does not define `name` or does not parse is
    returned as it is, so the sandbox reports its real error."""
    source = code if _parses(code) else _largest_parsable_prefix(code)
    if source is None:
        return code
    tree = ast.parse(source)
    kept = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.ClassDef, ast.Assign, ast.AnnAssign))]
    defined = {n.name for n in kept if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if name and name not in defined:
        return code
    lines = source.splitlines()
    out = []
    for node in kept:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        out.append("\n".join(lines[start:node.end_lineno]))
    return "\n".join(out) + "\n"


def clean(completion: str, task: Task, stop) -> str:
    """The program text a completion contributes: cut at a stop sequence, then (MBPP) definitions kept."""
    completion = cut_at_stop(completion, stop)[0]
    if task.is_humaneval:  # the body continues the prompt's signature: nothing to reorganise
        return completion
    return keep_definitions(completion, entry_point(task))
