"""Top-level `assert X == LITERAL` become reports; the literals stay outside the sample's process."""
import ast

from core.sandbox.checks import CHECK_NAME, split_checks


def test_top_level_literal_asserts_are_rewritten_in_place():
    program = ("def f(x):\n    assert x == 1\n    return [x, 'é']\n"
               "assert f(1) == [1, 'é'], 'message'\n"
               "assert f(\n    1) == [1,\n 'é']\nx = 3; assert x == 3; y = 4\n"
               "assert sorted(f(1)) == sorted([1, 'é'])\nassert f(1) != 2\n")
    rewritten, expected = split_checks(program)
    assert expected[0] == "[1, 'é']" and expected[2] == "3"  # the literals as written
    assert ast.literal_eval(expected[1]) == [1, "é"]  # one spanning lines: parenthesized, as written
    assert f"{CHECK_NAME}(0, (f(1)))\n" in rewritten
    assert f"{CHECK_NAME}(1, (f(\n    1)))\n" in rewritten
    assert f"x = 3; {CHECK_NAME}(2, (x)); y = 4\n" in rewritten
    assert "    assert x == 1\n" in rewritten  # inside a function: may run any number of times
    assert "assert sorted(f(1)) == sorted([1, 'é'])" in rewritten and "assert f(1) != 2" in rewritten
    assert "'message'" not in rewritten and "== [1" not in rewritten.split("return")[1]
    compile(rewritten, "<test>", "exec")


def test_a_program_that_does_not_parse_is_left_alone():
    assert split_checks("def f(:\nassert 1 == 1\n") == ("def f(:\nassert 1 == 1\n", [])
