"""Client for OpenAI-compatible completion servers (vLLM, TGI, SGLang): `openai:URL[,URL...]#MODEL`.

Several endpoint URLs spread the load (each request goes to the endpoint with the fewest
requests in flight), so a team scales generation past one machine by starting more servers.
Concurrency is bounded; connection errors, timeouts, 429 and 5xx answers are retried with
exponential backoff on the next endpoint; other answers fail at once with the server's own
message. An API key is read from OPENAI_API_KEY and never appears in a log or an error; it is sent
only to endpoints the operator allow-listed in HRM_GATE_OPENAI_ENDPOINTS (comma-separated URL
prefixes, e.g. https://llm.internal:8000/v1), never on a redirect, and a spec naming any other
endpoint while a key is set is refused. A server's reply never lands in an error (which the
manifest keeps): only its HTTP status does.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from core.base.errors import GateError, ModelSpecError
from core.models.interface import Request, TextGenerator
from core.models.sampling import SamplingParams
from core.tasks.completions import cut_at_stop

log = logging.getLogger(__name__)


class GenerationError(GateError):
    """A server refused or kept failing a generation request."""


ALLOWED_ENV = "HRM_GATE_OPENAI_ENDPOINTS"


def _origin_path(url: str) -> tuple[str, str, int | None, str]:
    u = urllib.parse.urlsplit(url.strip())
    port = u.port or {"http": 80, "https": 443}.get(u.scheme)
    return u.scheme.lower(), (u.hostname or "").lower(), port, u.path.rstrip("/")


def endpoint_allowed(url: str, allowed: str | None = None) -> bool:
    """Whether the operator allow-listed this endpoint for the API key: same scheme, host and port as an
    entry of HRM_GATE_OPENAI_ENDPOINTS, and a path at or below the entry's."""
    allowed = os.environ.get(ALLOWED_ENV, "") if allowed is None else allowed
    scheme, host, port, path = _origin_path(url)
    for entry in (e for e in allowed.split(",") if e.strip()):
        s2, h2, p2, path2 = _origin_path(entry)
        if (scheme, host, port) == (s2, h2, p2) and (path == path2 or path.startswith(path2 + "/")):
            return True
    return False


class OpenAICompatGenerator(TextGenerator):
    trained = True

    def __init__(self, arg: str, concurrency: int = 8, timeout: float = 120.0, retries: int = 4,
                 backoff: float = 0.5):
        urls, _, model = arg.partition("#")
        self.endpoints = [u.rstrip("/") for u in urls.split(",") if u]
        if not self.endpoints or not model:
            raise ModelSpecError("openai spec needs URL[,URL...]#MODEL, e.g. openai:http://127.0.0.1:8000/v1#my-model")
        for u in self.endpoints:
            if not u.startswith(("http://", "https://")):
                raise ModelSpecError(f"openai endpoint {u!r} must start with http:// or https://")
            if os.environ.get("OPENAI_API_KEY") and not endpoint_allowed(u):
                raise ModelSpecError(f"openai endpoint {u} is not allow-listed for OPENAI_API_KEY; the operator "
                                     f"adds it to {ALLOWED_ENV} (or unset the key for a server that needs none)")
        self.model = model
        self.name = f"openai:{model}"
        self.concurrency = concurrency
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._in_flight = [0] * len(self.endpoints)
        self._turn = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)
        self.requests_per_endpoint = [0] * len(self.endpoints)

    def describe(self) -> dict:
        return {"endpoints": len(self.endpoints), "model": self.model, "concurrency": self.concurrency}

    def _pick(self) -> int:
        with self._lock:
            n = len(self.endpoints)
            order = [(self._turn + i) % n for i in range(n)]
            best = min(order, key=lambda i: self._in_flight[i])
            self._turn = (best + 1) % n
            self._in_flight[best] += 1
            self.requests_per_endpoint[best] += 1
            return best

    def _release(self, i: int) -> None:
        with self._lock:
            self._in_flight[i] -= 1

    def _post(self, i: int, body: dict) -> dict:
        req = urllib.request.Request(f"{self.endpoints[i]}/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        key = os.environ.get("OPENAI_API_KEY")
        if key and endpoint_allowed(self.endpoints[i]):  # checked again here: the key never leaves otherwise
            req.add_unredirected_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read())

    def generate(self, prompt: str, params: SamplingParams) -> list[str]:
        body = {"model": self.model, "prompt": prompt, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "n": params.n, "seed": params.seed}
        if params.stop:
            body["stop"] = list(params.stop)
        last = ""
        with self._slots:
            for attempt in range(self.retries + 1):
                i = self._pick()
                try:
                    data = self._post(i, body)
                    choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
                    if len(choices) != params.n:
                        raise GenerationError(f"{self.endpoints[i]} returned {len(choices)} choices for n={params.n}")
                    return [cut_at_stop(c["text"], params.stop)[0] for c in choices]
                except urllib.error.HTTPError as exc:
                    if exc.code != 429 and exc.code < 500:  # the reply's body is not kept: it may echo anything
                        raise GenerationError(f"{self.endpoints[i]} refused the request: HTTP {exc.code}") from None
                    last = f"HTTP {exc.code}"
                except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                    last = str(getattr(exc, "reason", exc))
                except (KeyError, ValueError, TypeError) as exc:
                    raise GenerationError(f"{self.endpoints[i]} answered in an unexpected shape ({exc}); is it an "
                                          "OpenAI-compatible /v1 completions endpoint?") from None
                finally:
                    self._release(i)
                if attempt < self.retries:
                    delay = self.backoff * 2 ** attempt
                    log.warning("%s: %s; retrying in %.1f s", self.endpoints[i], last, delay)
                    time.sleep(delay)
        raise GenerationError(f"no endpoint answered after {self.retries + 1} tries (last: {last}); are the servers up?")

    def generate_many(self, requests: list[Request]):
        """Yields (index, completions) as requests finish, up to `concurrency` at a time."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self.generate, r.prompt, r.params): idx for idx, r in enumerate(requests)}
            from concurrent.futures import as_completed
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
