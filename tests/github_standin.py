"""A loopback stand-in for the parts of GitHub's REST API we call, with GitHub's shapes and rules.

It keeps state like GitHub does: issues and PRs share numbers and comments, labels, commit
statuses, workflow runs with their artifacts (the artifact download answers 302 to a blob URL
that must be fetched without the token), and a webhook that answers like Slack's (200, the plain
text `ok`; `slack_fail` queues answers such as (429, "rate_limited", {"Retry-After": "1"})).
Lists are paged as GitHub pages them: per_page (default 30, at most 100), page, a Link header. Every /repos request needs the
token (401 otherwise). `files` serves raw files (a dataset's canonical URL in tests).
"""
import re
from urllib.parse import parse_qs, urlparse

from tests.loopback import JsonHandler, serve, stop

TOKEN = "ghp_test_token_never_printed"


class GitHubStandIn:
    def __init__(self, repo: str = "o/r"):
        self.repo = repo
        self.requests = []           # (method, path, Authorization header, body)
        self.comments = {}           # comment id -> {"issue": number, "body": text}
        self.labels = {}             # issue number -> [label, ...]
        self.statuses = []
        self.issues = {}             # number -> {"number", "title", "body", "labels", "state"}
        self.runs = []               # workflow runs, oldest first: {"id", "workflow", "head_sha", ...}
        self.artifacts = {}          # artifact id -> {"run_id", "name", "zip"}
        self.slack = []
        self.slack_fail = []         # (code, text, headers) answered before the next `ok`s
        self.files = {}              # /raw/<name> -> bytes
        self._next = 100
        fake = self

        class Handler(JsonHandler):
            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

            def do_PATCH(self):
                fake._handle(self, "PATCH")

            def do_DELETE(self):
                fake._handle(self, "DELETE")

        self.httpd, self.url = serve(Handler)

    def close(self):
        stop(self.httpd)

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def add_run(self, workflow: str, head_sha: str, artifacts: dict[str, bytes], head_branch: str = "main",
                event: str = "push") -> dict:
        run = {"id": self.new_id(), "workflow": workflow, "head_sha": head_sha, "status": "completed",
               "head_branch": head_branch, "event": event,
               "html_url": f"https://github.invalid/{self.repo}/actions/runs/{self._next}",
               "created_at": f"2026-11-25T03:{len(self.runs):02d}:00Z"}
        self.runs.append(run)
        for name, blob in artifacts.items():
            self.artifacts[self.new_id()] = {"run_id": run["id"], "name": name, "zip": blob}
        return run

    def comments_on(self, number: int) -> list[str]:
        return [c["body"] for c in self.comments.values() if c["issue"] == number]

    # ------------------------------------------------------------------ routing
    def _handle(self, h, method):
        url = urlparse(h.path)
        path, query = url.path, parse_qs(url.query)
        body = h.read_json() if method in ("POST", "PATCH") else None
        auth = h.headers.get("Authorization")
        self.requests.append((method, h.path, auth, body))
        if path.startswith("/slack/"):
            if self.slack_fail:
                code, text, headers = self.slack_fail.pop(0)
                return h.send_text(code, text, headers)
            self.slack.append(body)
            return h.send_text(200, "ok")
        if path.startswith("/raw/") and path[5:] in self.files:
            return self._send_bytes(h, self.files[path[5:]], "application/octet-stream")
        if path.startswith("/blob/"):
            if auth:  # GitHub's blob storage must never see the token
                return h.send_json(400, {"message": "unexpected Authorization header"})
            art = self.artifacts.get(int(path.rsplit("/", 1)[1]))
            return self._send_bytes(h, art["zip"], "application/zip") if art else h.send_json(404, {})
        base = f"/repos/{self.repo}"
        if not path.startswith(base + "/"):
            return h.send_json(404, {"message": "Not Found"})
        if auth != f"Bearer {TOKEN}":
            return h.send_json(401, {"message": "Bad credentials"})
        rest = path[len(base):]
        for pattern, handler in self._routes():
            m = re.fullmatch(pattern, f"{method} {rest}")
            if m:
                return handler(h, body, query, *m.groups())
        return h.send_json(404, {"message": "Not Found"})

    def _routes(self):
        return [
            (r"GET /issues/(\d+)/comments", self._list_comments),
            (r"POST /issues/(\d+)/comments", self._add_comment),
            (r"PATCH /issues/comments/(\d+)", self._edit_comment),
            (r"POST /issues/(\d+)/labels", self._add_labels),
            (r"GET /issues/(\d+)/labels", self._list_labels),
            (r"DELETE /issues/(\d+)/labels/([^/]+)", self._remove_label),
            (r"PATCH /issues/(\d+)", self._edit_issue),
            (r"POST /statuses/(\w+)", self._add_status),
            (r"GET /issues", self._list_issues),
            (r"POST /issues", self._open_issue),
            (r"GET /actions/workflows/([\w.-]+)/runs", self._list_runs),
            (r"GET /actions/runs/(\d+)/artifacts", self._list_artifacts),
            (r"GET /actions/artifacts/(\d+)/zip", self._artifact_zip),
        ]

    def _page(self, h, query, items):
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k != "page")
            headers["Link"] = (f'<{self.url}{urlparse(h.path).path}?{rest}&page={page + 1}>; rel="next", '
                               f'<{self.url}{urlparse(h.path).path}?{rest}&page={-(-len(items) // per_page)}>; rel="last"')
        return h.send_json(200, chunk, headers)

    def _list_comments(self, h, body, query, number):
        return self._page(h, query, [{"id": i, "body": c["body"]} for i, c in sorted(self.comments.items())
                                     if c["issue"] == int(number)])

    def _list_labels(self, h, body, query, number):
        return self._page(h, query, [{"name": n} for n in self.labels.get(int(number), [])])

    def _remove_label(self, h, body, query, number, name):
        from urllib.parse import unquote
        have = self.labels.get(int(number), [])
        if unquote(name) not in have:
            return h.send_json(404, {"message": "Label does not exist"})
        have.remove(unquote(name))
        return h.send_json(200, [{"name": n} for n in have])

    def _edit_issue(self, h, body, query, number):
        issue = self.issues.get(int(number))
        if issue is None:
            return h.send_json(404, {"message": "Not Found"})
        issue.update({k: v for k, v in body.items() if k in ("state", "title", "body")})
        return h.send_json(200, issue)

    def _add_comment(self, h, body, query, number):
        cid = self.new_id()
        self.comments[cid] = {"issue": int(number), "body": body["body"]}
        return h.send_json(201, {"id": cid})

    def _edit_comment(self, h, body, query, cid):
        if int(cid) not in self.comments:
            return h.send_json(404, {"message": "Not Found"})
        self.comments[int(cid)]["body"] = body["body"]
        return h.send_json(200, {"id": int(cid)})

    def _add_labels(self, h, body, query, number):
        have = self.labels.setdefault(int(number), [])
        have += [label for label in body["labels"] if label not in have]
        return h.send_json(200, [{"name": n} for n in have])

    def _add_status(self, h, body, query, sha):
        self.statuses.append({**body, "sha": sha})
        return h.send_json(201, body)

    def _list_issues(self, h, body, query, *groups):
        state, labels = query.get("state", ["open"])[0], set(",".join(query.get("labels", [])).split(",")) - {""}
        found = [i for i in self.issues.values() if i["state"] == state and labels <= set(i["labels"])]
        return self._page(h, query, sorted(found, key=lambda i: -i["number"]))

    def _open_issue(self, h, body, query, *groups):
        number = self.new_id()
        self.issues[number] = {"number": number, "title": body["title"], "body": body.get("body", ""),
                               "labels": list(body.get("labels", [])), "state": "open"}
        return h.send_json(201, self.issues[number])

    def _list_runs(self, h, body, query, workflow):
        runs = [r for r in reversed(self.runs) if r["workflow"] == workflow
                and r["status"] == query.get("status", [r["status"]])[0]
                and r["head_branch"] == query.get("branch", [r["head_branch"]])[0]
                and r["event"] == query.get("event", [r["event"]])[0]]
        return h.send_json(200, {"total_count": len(runs), "workflow_runs": runs})

    def _list_artifacts(self, h, body, query, run_id):
        arts = [{"id": i, "name": a["name"], "expired": False,
                 "archive_download_url": f"{self.url}/repos/{self.repo}/actions/artifacts/{i}/zip"}
                for i, a in self.artifacts.items() if a["run_id"] == int(run_id)]
        return h.send_json(200, {"total_count": len(arts), "artifacts": arts})

    def _artifact_zip(self, h, body, query, art_id):
        if int(art_id) not in self.artifacts:
            return h.send_json(404, {"message": "Not Found"})
        h.send_response(302)
        h.send_header("Location", f"{self.url}/blob/{art_id}?sig=signed")
        h.send_header("Content-Length", "0")
        h.end_headers()

    @staticmethod
    def _send_bytes(h, data: bytes, content_type: str):
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
