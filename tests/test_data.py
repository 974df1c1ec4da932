import http.server
import json
import threading

import pytest

from core.tasks import data

from core.tasks import prompts
from core.base.errors import DataError


def test_mbpp_splits(mbpp_path):
    sizes = {s: len(data.load_dataset("mbpp", mbpp_path, s).tasks) for s in ("prompt", "test", "validation", "train")}
    assert sizes == {"prompt": 10, "test": 500, "validation": 90, "train": 374}
    ds = data.load_dataset("mbpp", mbpp_path, "test")
    assert ds.tasks[0].task_id == 11 and ds.tasks[-1].task_id == 510
    assert [t.task_id for t in ds.shots] == [2, 3, 4]
    assert len(ds.sha256) == 64


def test_sanitized_uses_test_imports(sanitized_path):
    ds = data.load_dataset("mbpp-sanitized", sanitized_path, "all")
    assert len(ds.tasks) == 427
    with_imports = [t for t in ds.tasks if t.imports]
    assert with_imports and with_imports[0].program("X").startswith(with_imports[0].imports[0])


def test_program_puts_setup_after_solution(mbpp_path):
    task = data.load_dataset("mbpp", mbpp_path, "test").by_key()["367"]
    prog = task.program("SOLUTION")
    assert prog.index("SOLUTION") < prog.index("root = Node(1)") < prog.index("assert is_tree_balanced")
    challenge = [t for t in data.load_dataset("mbpp", mbpp_path, "all").tasks if t.challenge_tests][0]
    assert challenge.challenge_tests[0] in challenge.program("", challenge=True)
    assert challenge.challenge_tests[0] not in challenge.program("")


def test_humaneval_format(tmp_path):
    f = tmp_path / "he.jsonl"
    f.write_text(json.dumps({"task_id": "HumanEval/0", "prompt": "def add(a, b):\n", "canonical_solution": "    return a + b\n",
                             "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add"}) + "\n")
    ds = data.load_dataset("humaneval-jsonl", f)
    prog = ds.tasks[0].program(ds.tasks[0].reference)
    assert prog.endswith("check(add)\n") and "return a + b" in prog
    assert prompts.get_template(None, "humaneval-jsonl").render(ds.tasks[0], ds) == "def add(a, b):\n"


def test_prompts(mbpp_path):
    ds = data.load_dataset("mbpp", mbpp_path, "test")
    t = ds.tasks[0]
    three = prompts.get_template("mbpp-3shot", "mbpp").render(t, ds)
    assert three.count("[BEGIN]") == 4 and three.count("[DONE]") == 3 and three.endswith("[BEGIN]\n")
    assert three.startswith("You are an expert Python programmer, and here is your task: ")
    assert "Your code should pass these tests:\n\n" + t.tests[0] in three
    doc = prompts.get_template("mbpp-docstring", "mbpp").render(t, ds)
    assert doc == f'"""\n{t.description.strip()}\n{t.tests[0]}\n"""\n'
    assert prompts.truncate_at_stop("def f():\n  return 1\n[DONE] junk", ("[DONE]",)) == "def f():\n  return 1\n"
    assert prompts.truncate_at_stop("x = 1\nassert x\nprint(x)", prompts.BIGCODE_MBPP_STOP) == "x = 1"


def test_task_key_normalises():
    assert {data.task_key(x) for x in (11, "11", "MBPP/11", "Mbpp/11")} == {"11"}


@pytest.mark.parametrize("content, expected", [
    ('{"task_id": 1, "text": "t", "code": "c", "test_list": []}\n{broken\n', ":2: not valid JSON"),
    ('{"task_id": 1, "text": "t"}\n', "missing field(s) code, test_list"),
    ("[1, 2]\n", "expected a JSON object per line"),
])
def test_malformed_mbpp_names_the_line(tmp_path, content, expected):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        data.load_dataset("mbpp", f, "all")


def test_unknown_dataset_and_split(mbpp_path):
    with pytest.raises(DataError, match="unknown --dataset 'apps'"):
        data.load_dataset("apps", mbpp_path)
    with pytest.raises(DataError, match="unknown --split"):
        data.load_dataset("mbpp", mbpp_path, "dev")
    with pytest.raises(DataError, match="data file not found"):
        data.load_dataset("mbpp", mbpp_path.parent / "nope.jsonl")


def test_download_once_and_record_sha(tmp_path, mbpp_path):
    """The download path, served from loopback (no test talks to the internet)."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = mbpp_path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/mbpp.jsonl"
    try:
        for _ in range(2):
            data.download("mbpp", tmp_path, url)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/mbpp.jsonl"]
    assert (tmp_path / "mbpp.jsonl.sha256").read_text().strip() == data.sha256_of(mbpp_path)
    with pytest.raises(DataError, match="could not download mbpp.*--data-path"):
        data.download("mbpp", tmp_path / "other", url)  # server is down now
