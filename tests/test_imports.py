"""`python -m core import`: each format read from a few lines in its real layout, task ids mapped to
MBPP's, unknown and repeated tasks reported one line each, and the imports scored in the real sandbox."""
import gzip
import json

import pytest

from core.base.errors import DataError
from core.tasks.data import load_dataset
from core.tasks.imports import import_file
from tests.test_evaluate import cli

# Lines of the published MapCoder files (../shared/data/published/mapcoder-chatgpt-mbpp/), some long
# fields (responses, token counts) left out. Task 8's program uses List without importing it: the
# prompt's import line must come first. Task 61: the authors say unsolved; it passes its own test.
MAPCODER = [
    {"name": "mbpp_3_is_not_prime", "language": "Python3", "prompt": "def is_not_prime(n: int) -> bool:\n    \"\"\"\n\tWrite a python function to identify non-prime numbers.\n\t\"\"\"\n", "doctests": "transform", "prompt_terminology": "reworded", "stop_tokens": ["\ndef", "\n#", "\nif", "\nclass"], "entry_point": "is_not_prime", "test": "def check(candidate):\n    \n    assert candidate(10)==True\n    assert candidate(35)==True\n    assert candidate(37)==False\n\ndef test_check():\n    check(is_not_prime)\n\ntest_check()\n", "source_codes": ["def is_not_prime(n: int) -> bool:\n    if n <= 1:\n        return True\n    for i in range(2, int(n ** 0.5) + 1):\n        if n % i == 0:\n            return True\n    return False"], "prompt_tokens": [2152], "completion_tokens": [1135], "no_of_try": 1, "api_calls": 8, "is_solved": True, "task_id": "mbpp_3_is_not_prime"},
    {"name": "mbpp_8_square_nums", "language": "Python3", "prompt": "from typing import List\n\ndef square_nums(nums: List[int]) -> List[int]:\n    \"\"\"\n\tWrite a function to find squares of individual elements in a list.\n\t\"\"\"\n", "entry_point": "square_nums", "test": "def check(candidate):\n    \n    assert candidate([10, 20, 30])==[100, 400, 900]\n    assert candidate([12, 15])==[144, 225]\n\ndef test_check():\n    check(square_nums)\n\ntest_check()\n", "source_codes": ["def square_nums(nums: List[int]) -> List[int]:\n    return [num**2 for num in nums]"], "no_of_try": 1, "is_solved": True, "task_id": "mbpp_8_square_nums"},
    {"name": "mbpp_61_count_Substrings", "language": "Python3", "prompt": "def count_Substrings(s: str) -> int:\n    \"\"\"\n\tWrite a python function to count the number of substrings with the sum of digits equal to their length.\n\t\"\"\"\n", "doctests": "transform", "prompt_terminology": "reworded", "stop_tokens": ["\ndef", "\n#", "\nif", "\nclass"], "entry_point": "count_Substrings", "test": "def check(candidate):\n    \n    assert candidate('111')==6\n    assert candidate('1101112')==12\n\ndef test_check():\n    check(count_Substrings)\n\ntest_check()\n", "source_codes": ["def count_Substrings(s: str) -> int:\n    count = 0\n    for i in range(len(s)):\n        for j in range(i, len(s)):\n            sub = s[i:j+1]\n            if sum(int(digit) for digit in sub) == len(sub):\n                count += 1\n    return count"], "prompt_tokens": [2084], "completion_tokens": [1806], "no_of_try": 1, "api_calls": 8, "is_solved": False, "task_id": "mbpp_61_count_Substrings"},
]
REFLEXION = {"name": "mbpp_3_is_not_prime", "language": "py", "prompt": "def is_not_prime(n: int) -> bool:\n    \"\"\"\n\tWrite a python function to identify non-prime numbers.\n\t\"\"\"\n", "doctests": "transform", "prompt_terminology": "reworded", "stop_tokens": ["\ndef", "\n#", "\nif", "\nclass"], "entry_point": "is_not_prime", "test": "def check(candidate):\n    \n    assert candidate(10)==True\n    assert candidate(35)==True\n    assert candidate(37)==False\n\ndef test_check():\n    check(is_not_prime)\n\ntest_check()\n", "is_solved": True, "reflections": [], "solution": "def is_not_prime(n: int) -> bool:\n    if n < 2:\n        return True\n    for i in range(2, int(n**0.5) + 1):\n        if n % i == 0:\n            return True\n    return False", "hallucination": False}
# MultiPL-E's completions output: the body continues the prompt (one problem; two completions, one wrong).
MULTIPL_E = {"name": "mbpp_8_square_nums", "language": "py", "temperature": 0.2, "top_p": 0.95, "max_tokens": 512,
             "prompt": MAPCODER[1]["prompt"], "tests": MAPCODER[1]["test"], "test": MAPCODER[1]["test"],
             "entry_point": "square_nums", "stop_tokens": ["\ndef", "\n#", "\nif", "\nclass"],
             "completions": ["    return [n * n for n in nums]\n", "    return [n + n for n in nums]\n"]}
# bigcode-evaluation-harness generations.json (task mbpp): per task of MBPP's test split, in order, its
# generations with the docstring prompt included.
BIGCODE = [
    ['"""\nWrite a python function to remove first and last occurrence of a given character from the string.\n'
     'assert remove_Occ("hello","l") == "heo"\n"""\ndef remove_Occ(s,ch):\n    i = s.find(ch)\n    if i >= 0:\n'
     '        s = s[:i] + s[i+1:]\n    j = s.rfind(ch)\n    if j >= 0:\n        s = s[:j] + s[j+1:]\n    return s\n',
     '"""\nWrite a python function to remove first and last occurrence of a given character from the string.\n'
     'assert remove_Occ("hello","l") == "heo"\n"""\ndef remove_Occ(s,ch):\n    return s.replace(ch, "")\n'],
    ['"""\nWrite a function to sort a given matrix in ascending order according to the sum of its rows.\n'
     'assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]])==[[1, 1, 1], [1, 2, 3], [2, 4, 5]]\n"""\n'
     'def sort_matrix(M):\n    return sorted(M, key=sum)\n',
     '"""\nWrite a function to sort a given matrix in ascending order according to the sum of its rows.\n'
     'assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]])==[[1, 1, 1], [1, 2, 3], [2, 4, 5]]\n"""\n'
     'def sort_matrix(M):\n    return sorted(M, key=sum)\n'],
]
EVALPLUS = [
    {"task_id": "Mbpp/2", "solution": "def similar_elements(test_tup1, test_tup2):\n    return tuple(set(test_tup1) & set(test_tup2))\n"},
    {"task_id": "Mbpp/11", "solution": "def remove_Occ(s,ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n"},
    {"task_id": "Mbpp/11", "solution": "def remove_Occ(s,ch):\n    return s\n"},
    {"task_id": "HumanEval/0", "solution": "def has_close_elements(numbers, threshold):\n    return False\n"},
]
OURS = [
    {"task_id": 12, "completion": "def sort_matrix(M):\n    return sorted(M, key=sum)\n"},
    {"task_id": "MBPP/13", "completion": "def count_common(words):\n    return []\n"},
    {"task_id": 12, "sample_id": 0, "completion": "def sort_matrix(M):\n    return M\n"},
    {"task_id": "x", "completion": ""},
]


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def all_ids(mbpp_path):
    return [t.task_id for t in load_dataset("mbpp", mbpp_path, "all").tasks]


@pytest.fixture(scope="module")
def test_ids(mbpp_path):
    return [t.task_id for t in load_dataset("mbpp", mbpp_path, "test").tasks]


def test_mapcoder_rows_map_to_mbpp_ids_with_own_tests_and_labels(tmp_path, all_ids):
    f = jsonl(tmp_path / "m.jsonl", [*MAPCODER, MAPCODER[0], {**MAPCODER[0], "name": "mbpp_9999_nothing"},
                                     {**MAPCODER[0], "name": "HumanEval_0_x"}])
    imp = import_file(f, "mapcoder", all_ids)
    assert [(r["task_id"], r["sample_id"]) for r in imp.samples] == [(3, 0), (8, 0), (61, 0)]
    assert imp.samples[1]["completion"] == MAPCODER[1]["source_codes"][0]
    assert [t["name"] for t in imp.tests] == ["mbpp_3_is_not_prime", "mbpp_8_square_nums", "mbpp_61_count_Substrings"]
    assert imp.labels == {3: True, 8: True, 61: False}
    assert imp.problems == ["line 4: task 3 again (first on line 1); left out",
                            "line 5: task 9999 (mbpp_9999_nothing) is not among the chosen MBPP tasks; left out",
                            "line 6: task 'HumanEval_0_x' is not an MBPP task id; left out"]


def test_a_split_leaves_out_tasks_outside_it_by_name(tmp_path, test_ids):
    imp = import_file(jsonl(tmp_path / "m.jsonl", MAPCODER), "mapcoder", test_ids)
    assert [r["task_id"] for r in imp.samples] == [61]
    assert len(imp.problems) == 2 and "task 3 (mbpp_3_is_not_prime) is not among" in imp.problems[0]


def test_reflexion_solution_and_a_wrong_format_named(tmp_path, all_ids):
    f = jsonl(tmp_path / "r.jsonl", [REFLEXION])
    imp = import_file(f, "reflexion", all_ids)
    assert imp.samples == [{"task_id": 3, "sample_id": 0, "completion": REFLEXION["solution"]}] and imp.labels == {3: True}
    with pytest.raises(DataError, match="no source_codes list; is this MapCoder output"):
        import_file(f, "mapcoder", all_ids)
    with pytest.raises(DataError, match="needs task_id and solution"):
        import_file(f, "evalplus", all_ids)


def test_multipl_e_completions_continue_the_prompt(tmp_path, all_ids):
    f = tmp_path / "mbpp_8_square_nums.json"  # MultiPL-E writes one JSON file per problem
    f.write_text(json.dumps(MULTIPL_E, indent=2))
    imp = import_file(f, "multipl-e", all_ids)
    assert [r["completion"] for r in imp.samples] == [MULTIPL_E["prompt"] + c for c in MULTIPL_E["completions"]]
    assert [r["sample_id"] for r in imp.samples] == [0, 1] and imp.labels == {}
    gz = tmp_path / "mbpp_8_square_nums.json.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    assert import_file(gz, "multipl-e", all_ids).samples == imp.samples


def test_bigcode_lists_follow_mbpp_test_split_order(tmp_path, test_ids):
    f = tmp_path / "generations.json"
    f.write_text(json.dumps(BIGCODE + [["x"]] * 499))  # 501 lists: one more than the split has
    imp = import_file(f, "bigcode", test_ids)
    assert [(r["task_id"], r["sample_id"]) for r in imp.samples[:4]] == [(11, 0), (11, 1), (12, 0), (12, 1)]
    assert imp.n_tasks == 500 and imp.problems == ["line 501: task '#500' is not an MBPP task id; left out"]
    f.write_text(json.dumps({"mbpp": BIGCODE}))
    with pytest.raises(DataError, match="expected a list of lists"):
        import_file(f, "bigcode", test_ids)


def test_evalplus_ids_and_samples(tmp_path, test_ids):
    imp = import_file(jsonl(tmp_path / "e.jsonl", EVALPLUS), "evalplus", test_ids)
    assert [(r["task_id"], r["sample_id"]) for r in imp.samples] == [(11, 0), (11, 1)]
    assert imp.problems == ["line 1: task 2 (Mbpp/2) is not among the chosen MBPP tasks; left out",
                            "line 4: task 'HumanEval/0' is not an MBPP task id; left out"]


def test_ours_ids_as_people_write_them_and_repeats(tmp_path, test_ids):
    imp = import_file(jsonl(tmp_path / "o.jsonl", OURS), "ours", test_ids)
    assert [(r["task_id"], r["sample_id"]) for r in imp.samples] == [(12, 0), (13, 0)]
    assert imp.problems == ["line 3: task 12 sample 0 again (first on line 1); left out",
                            "line 4: task 'x' is not an MBPP task id; left out"]


def test_unknown_format_and_empty_result_are_one_error(tmp_path, test_ids):
    with pytest.raises(DataError, match="unknown --format 'humaneval'"):
        import_file(jsonl(tmp_path / "o.jsonl", OURS), "humaneval", test_ids)
    with pytest.raises(DataError, match="no usable generation"):
        import_file(jsonl(tmp_path / "o.jsonl", [OURS[-1]]), "ours", test_ids)


def test_cli_scores_mapcoder_against_its_own_tests_and_checks_labels(tmp_path, mbpp_path):
    f = jsonl(tmp_path / "ChatGPT-MapCoder.jsonl", [*MAPCODER, MAPCODER[0]])
    out = cli("import", f, "--format", "mapcoder", "--data-path", mbpp_path, "--split", "all", "--out", tmp_path / "imp",
              "--run-dir", tmp_path / "run").stdout
    assert "line 4: task 3 again (first on line 1); left out" in out
    assert "3 tasks, pass@1 = 100.0%" in out  # task 8 passes only with the prompt's `from typing import List`
    assert "authors' is_solved: 2 of 3; ours: 3; 1 disagree" in out and "task 61: authors unsolved, ours passed" in out
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["model"] == "samples:ChatGPT-MapCoder.jsonl" and manifest["dataset"]["name"] == "mbpp-typed"
    assert manifest["imported"]["format"] == "mapcoder"


def test_cli_scores_evalplus_against_mbpp_asserts(tmp_path, mbpp_path):
    f = jsonl(tmp_path / "samples.jsonl", EVALPLUS)
    out = cli("import", f, "--format", "evalplus", "--data-path", mbpp_path, "--out", tmp_path / "imp", "--limit", "1",
              "--run-dir", tmp_path / "run", check=False)
    assert out.returncode == 2 and "unrecognized arguments: --limit" in out.stderr  # --limit is not an import flag
    out = cli("import", f, "--format", "evalplus", "--data-path", mbpp_path, "--out", tmp_path / "imp",
              "--run-dir", tmp_path / "run").stdout
    results = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    by_sample = {(r["task_id"], r["sample_id"]): r["status"] for r in results}
    assert by_sample[(11, 0)] == "passed" and by_sample[(11, 1)] == "failed" and by_sample[(12, 0)] == "missing"
    assert "500 tasks" in out


def test_three_published_files_share_one_test_set(tmp_path, mbpp_path):
    f = jsonl(tmp_path / "a.jsonl", MAPCODER)
    g = jsonl(tmp_path / "b.jsonl", [REFLEXION])
    for src, fmt in ((f, "mapcoder"), (g, "reflexion")):
        cli("import", src, "--format", fmt, "--data-path", mbpp_path, "--split", "all", "--out", tmp_path / "imp")
    a = (tmp_path / "imp" / "a.tests.jsonl").read_text().splitlines()
    b = (tmp_path / "imp" / "b.tests.jsonl").read_text().splitlines()
    assert a[0] == b[0]  # the same task's test, byte for byte, whatever the method's file


def test_a_model_is_not_evaluated_on_the_typed_tests(tmp_path, mbpp_path):
    f = jsonl(tmp_path / "m.jsonl", MAPCODER)
    cli("import", f, "--format", "mapcoder", "--data-path", mbpp_path, "--split", "all", "--out", tmp_path / "imp")
    out = cli("eval", "--model", "oracle", "--dataset", "mbpp-typed", "--data-path", tmp_path / "imp" / "m.tests.jsonl",
              "--split", "all", "--run-dir", tmp_path / "run", check=False)
    assert out.returncode != 0 and out.stderr.strip().splitlines()[-1].startswith(
        "error: --dataset mbpp-typed scores imported generations")
    assert not (tmp_path / "run").exists()
