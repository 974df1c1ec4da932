"""The OpenAI-compatible client against a loopback server that answers with our tiny HRM."""
import logging

import pytest

from core.models import load_generator, parse_spec
from core.models.interface import Request
from core.base.errors import ModelSpecError
from core.models.openai_compat import ALLOWED_ENV, GenerationError, OpenAICompatGenerator, endpoint_allowed
from core.models.sampling import SamplingParams
from tests.loopback import JsonHandler, serve, stop

TOKEN = "sk-test-do-not-leak-123"


class CompletionServer:
    """Speaks POST /v1/completions; generation by hrm:tiny. Can fail its first `fail_first` calls."""

    def __init__(self, fail_first=0, status=503):
        self.hrm = load_generator(parse_spec("hrm:tiny"))
        self.calls, self.auth = 0, []
        self.fail_first, self.status = fail_first, status
        server = self

        class Handler(JsonHandler):
            def do_POST(self):
                server.calls += 1
                server.auth.append(self.headers.get("Authorization"))
                body = self.read_json()
                if self.path != "/v1/completions":
                    return self.send_json(404, {"error": "not found"})
                if server.calls <= server.fail_first:
                    return self.send_json(server.status, {"error": {"message": "overloaded"}})
                params = SamplingParams(n=body.get("n", 1), temperature=body.get("temperature", 0),
                                        top_p=body.get("top_p", 1), max_new_tokens=body["max_tokens"],
                                        stop=tuple(body.get("stop") or ()), seed=body.get("seed", 0))
                texts = server.hrm.generate(body["prompt"], params)
                self.send_json(200, {"object": "text_completion", "model": body["model"],
                                  "choices": [{"index": i, "text": t, "finish_reason": "stop"} for i, t in enumerate(texts)]})

        self.httpd, base = serve(Handler)
        self.url = f"{base}/v1"

    def close(self):
        stop(self.httpd)


@pytest.fixture
def servers():
    made = []

    def make(**kw):
        s = CompletionServer(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_answers_come_from_the_model(servers, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TOKEN)
    s = servers()
    monkeypatch.setenv(ALLOWED_ENV, s.url)
    gen = OpenAICompatGenerator(f"{s.url}#hrm-tiny")
    params = SamplingParams(n=2, temperature=0.7, max_new_tokens=12, seed=5)
    assert gen.generate("def f(x):\n", params) == s.hrm.generate("def f(x):\n", params)
    assert s.auth == [f"Bearer {TOKEN}"]


def test_retries_a_server_that_fails_twice(servers, caplog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TOKEN)
    s = servers(fail_first=2)
    monkeypatch.setenv(ALLOWED_ENV, s.url)
    gen = OpenAICompatGenerator(f"{s.url}#m", backoff=0.01)
    with caplog.at_level(logging.WARNING):
        out = gen.generate("x = ", SamplingParams(max_new_tokens=5))
    assert len(out) == 1 and s.calls == 3
    assert caplog.text.count("retrying") == 2 and TOKEN not in caplog.text


def test_spreads_load_over_endpoints(servers):
    a, b = servers(), servers()
    gen = OpenAICompatGenerator(f"{a.url},{b.url}#m", concurrency=4)
    reqs = [Request(f"x{i} = ", SamplingParams(max_new_tokens=4, seed=i)) for i in range(8)]
    results = dict(gen.generate_many(reqs))
    assert sorted(results) == list(range(8))
    assert a.calls >= 2 and b.calls >= 2 and a.calls + b.calls == 8


def test_clear_errors_and_no_token_leak(servers, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TOKEN)
    bad = servers(fail_first=100, status=400)
    down = servers(fail_first=100, status=503)
    monkeypatch.setenv(ALLOWED_ENV, f"{bad.url},{down.url}")
    with pytest.raises(GenerationError, match="refused the request: HTTP 400") as e:
        OpenAICompatGenerator(f"{bad.url}#m").generate("x", SamplingParams(max_new_tokens=2))
    assert TOKEN not in str(e.value)
    with pytest.raises(GenerationError, match="no endpoint answered after 3 tries") as e:
        OpenAICompatGenerator(f"{down.url}#m", retries=2, backoff=0.01).generate("x", SamplingParams(max_new_tokens=2))
    assert TOKEN not in str(e.value)
    port = down.httpd.server_address[1]
    down.close()
    monkeypatch.setenv(ALLOWED_ENV, f"http://127.0.0.1:{port}/v1")
    with pytest.raises(GenerationError, match="no endpoint answered"):
        OpenAICompatGenerator(f"http://127.0.0.1:{port}/v1#m", retries=1, backoff=0.01, timeout=2).generate(
            "x", SamplingParams(max_new_tokens=2))


def test_eval_through_the_server(servers, tmp_path, mbpp_path):
    from tests.test_evaluate import cli
    s = servers()
    # the CLI runs in a subprocess; the server lives in this one
    out = cli("eval", "--model", f"openai:{s.url}#hrm-tiny", "--dataset", "mbpp", "--data-path", mbpp_path,
              "--limit", "2", "--n", "2", "--temperature", "0.8", "--max-new-tokens", "8", "--run-dir", tmp_path / "r", "--no-progress")
    assert "4 samples" in out.stdout and s.calls == 2


def test_the_key_goes_only_to_allow_listed_endpoints(servers, monkeypatch):
    """Issue 16: the key was sent to any endpoint a user typed (a signed-in user collected it on a listener)."""
    monkeypatch.setenv("OPENAI_API_KEY", TOKEN)
    listener = servers()
    monkeypatch.delenv(ALLOWED_ENV, raising=False)
    with pytest.raises(ModelSpecError, match=f"not allow-listed for OPENAI_API_KEY.*{ALLOWED_ENV}"):
        OpenAICompatGenerator(f"{listener.url}#m")
    monkeypatch.setenv(ALLOWED_ENV, "http://127.0.0.1:1/v1,https://llm.example.org/v1")  # another port, another host
    with pytest.raises(ModelSpecError):
        OpenAICompatGenerator(f"{listener.url}#m")
    assert listener.calls == 0 and listener.auth == []
    monkeypatch.setenv(ALLOWED_ENV, listener.url)
    OpenAICompatGenerator(f"{listener.url}#m").generate("x = ", SamplingParams(max_new_tokens=2))
    assert listener.auth == [f"Bearer {TOKEN}"]
    monkeypatch.delenv("OPENAI_API_KEY")  # no key: any endpoint, nothing to leak
    monkeypatch.delenv(ALLOWED_ENV)
    OpenAICompatGenerator(f"{listener.url}#m").generate("x = ", SamplingParams(max_new_tokens=2))
    assert listener.auth[-1] is None


def test_endpoint_allow_list_matches_origin_and_path():
    allowed = "https://llm.example.org/v1,http://10.0.0.5:8000"
    assert endpoint_allowed("https://llm.example.org/v1", allowed)
    assert endpoint_allowed("https://LLM.example.org:443/v1/", allowed)
    assert endpoint_allowed("http://10.0.0.5:8000/v1", allowed)
    assert not endpoint_allowed("http://llm.example.org/v1", allowed)  # plain HTTP: another origin
    assert not endpoint_allowed("https://llm.example.org.evil.net/v1", allowed)
    assert not endpoint_allowed("https://llm.example.org/v10", allowed)
    assert not endpoint_allowed("https://user@evil.net/v1", allowed)
    assert not endpoint_allowed("http://10.0.0.5:8001/v1", allowed)


def test_a_refusal_keeps_no_part_of_the_reply(tmp_path, mbpp_path):
    """Issue 16: up to 300 characters of the reply landed in the error, and from there in the manifest."""
    from tests.test_evaluate import cli
    secret_reply = "ECHOED-" + "x" * 50

    class Echo(JsonHandler):
        def do_POST(self):
            self.send_json(400, {"error": {"message": secret_reply}})

    httpd, base = serve(Echo)
    try:
        out = cli("eval", "--model", f"openai:{base}/v1#m", "--data-path", mbpp_path, "--limit", "1",
                  "--max-new-tokens", "4", "--run-dir", tmp_path / "r", "--no-progress", check=False)
    finally:
        stop(httpd)
    assert out.returncode != 0 and "HTTP 400" in out.stderr + out.stdout
    stored = "".join(p.read_text(errors="replace") for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert "ECHOED" not in stored and "ECHOED" not in out.stderr + out.stdout
