"""Expected values kept out of the sample's process.

A test `assert EXPR == LITERAL` at the top level of a program is rewritten, before the program
reaches the sandbox, to `__hrm_check__(I, EXPR)`: the sample's process computes EXPR and reports
its value (plain data, encoded by type, never by the value's own methods); the worker compares it
with LITERAL, which never enters the sample's process. So a sample that forges the harness's
"ran to its end" signal, reads its own program, or returns an object that compares equal to
everything still fails such a test. 2,935 of MBPP's 2,938 asserts have this shape. Other asserts
(another comparison, a call on the expected side, inside a function or a loop) stay as they are.

Only top-level asserts are rewritten: each runs exactly once, so the worker can require a report
for every one of them.
"""
from __future__ import annotations

import ast
import functools

CHECK_NAME = "__hrm_check__"


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def split_checks(program: str) -> tuple[str, list[str]]:
    """(the program with its top-level `assert X == LITERAL` replaced by reports, the literals'
    source in report order). A program that does not parse is returned unchanged: the sandbox
    reports its syntax error."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return program, []
    raw = program.encode()
    starts = [0]
    for line in raw.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:
        return starts[lineno - 1] + col

    edits, expected = [], []
    for stmt in tree.body:
        test = stmt.test if isinstance(stmt, ast.Assert) else None
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
            continue
        want = test.comparators[0]
        if not _is_literal(want):
            continue
        # the literal's own source (the worker reads it with literal_eval; failures quote it), in
        # parentheses where it spans lines
        literal = raw[offset(want.lineno, want.col_offset):offset(want.end_lineno, want.end_col_offset)].decode()
        if "\n" in literal:
            literal = f"({literal}\n)"
        left = raw[offset(test.left.lineno, test.left.col_offset):
                   offset(test.left.end_lineno, test.left.end_col_offset)]
        call = f"{CHECK_NAME}({len(expected)}, (".encode() + left + b"))"
        edits.append((offset(stmt.lineno, stmt.col_offset), offset(stmt.end_lineno, stmt.end_col_offset), call))
        expected.append(literal)
    for start, end, text in reversed(edits):
        raw = raw[:start] + text + raw[end:]
    return raw.decode(), expected


@functools.lru_cache(maxsize=4096)
def split_test_lines(lines: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """split_checks of a task's assert lines alone, once per task: (the rewritten block, the literals).
    The block goes where the lines went; the completion before it is not rewritten (its own asserts
    run as they are)."""
    if not lines:
        return "", ()
    block, expected = split_checks("\n".join(lines))
    return block, tuple(expected)
