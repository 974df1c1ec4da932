"""Runs a GitHub Actions workflow's own commands here, the way a runner would, for tests.

What it does as GitHub does: the event payload in GITHUB_EVENT_PATH, the default GITHUB_* and
RUNNER_* variables, workflow/job/step `env:` with their `${{ }}` expressions evaluated against
github, inputs, secrets, runner, steps; `if:` conditions (success() implied); bash with
`-eo pipefail`; working-directory; step outputs through GITHUB_OUTPUT; the job summary file.
A job's `needs` outputs come from the caller. What it leaves to the caller: `uses:` actions (checkout and setup-python are no-ops here, as the
repository and Python are already in place; the caller passes handlers such as a local
upload-artifact), and steps it asks to skip.
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)
TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
                   r"|(?P<name>[A-Za-z_][\w.-]*(?:\[[^\]]+\])*))")


@dataclass
class StepRun:
    name: str
    status: str  # success | failure | skipped
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass
class JobRun:
    steps: list[StepRun] = field(default_factory=list)

    def step(self, name: str) -> StepRun:
        return next(s for s in self.steps if s.name == name)


def evaluate(expr: str, ctx: dict, status: str = "success"):
    """A GitHub expression: literals, context paths, ! && || == !=, and the status functions."""
    pos, out = 0, []
    functions = {"always": "True", "success": repr(status == "success"), "failure": repr(status == "failure"),
                 "cancelled": "False"}
    while expr[pos:].strip():
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot evaluate {expr!r} at {expr[pos:]!r}")
        pos = m.end()
        if m["str"]:
            out.append(repr(m["str"][1:-1].replace("''", "'")))
        elif m["num"]:
            out.append(m["num"])
        elif m["op"]:
            out.append({"&&": " and ", "||": " or ", "!": " not "}.get(m["op"], m["op"]))
        elif m["name"] in functions and expr[pos:].lstrip().startswith("("):
            out.append(functions[m["name"]] + " and True")
            pos = expr.index(")", pos) + 1
        elif m["name"] in ("true", "false", "null"):
            out.append({"true": "True", "false": "False", "null": "None"}[m["name"]])
        else:
            out.append(f"_get({m['name']!r})")
    return eval("".join(out), {"__builtins__": {}}, {"_get": lambda path: lookup(ctx, path)})  # noqa: S307


def lookup(ctx: dict, path: str):
    value = ctx
    for part in re.split(r"\.|\[|\]", path):
        part = part.strip("'\"")
        if not part:
            continue
        value = value.get(part) if isinstance(value, dict) else None
    return value


def substitute(text, ctx: dict) -> str:
    if not isinstance(text, str):
        return "" if text is None else str(text).lower() if isinstance(text, bool) else str(text)
    def one(m):
        v = evaluate(m.group(1), ctx)
        return "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return EXPR.sub(one, text)


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def run_scripts(doc: dict) -> list[str]:
    return [s["run"] for job in doc["jobs"].values() for s in job["steps"] if "run" in s]


def run_job(workflow: Path, job_name: str, event_name: str, payload: dict, *, workspace: Path, runner_temp: Path,
            base_env: dict, api_url: str, repository: str, secrets: dict | None = None, token: str = "",
            uses: dict | None = None, skip=lambda step: None, timeout: int = 900, needs: dict | None = None) -> JobRun:
    doc = load(workflow)
    job = doc["jobs"][job_name]
    runner_temp.mkdir(parents=True, exist_ok=True)
    event_path = runner_temp / "event.json"
    event_path.write_text(json.dumps(payload))
    sha = (payload.get("pull_request") or {}).get("head", {}).get("sha") or payload.get("after") or "0" * 40
    ctx = {"github": {"event_name": event_name, "event": payload, "repository": repository, "sha": sha,
                      "token": token, "workspace": str(workspace), "ref": payload.get("ref", "refs/heads/main")},
           "needs": needs or {}, "inputs": payload.get("inputs") or {}, "secrets": secrets or {}, "vars": {},
           "runner": {"temp": str(runner_temp), "os": "Linux"}, "steps": {}, "env": {}}
    ctx["github"]["ref_name"] = ctx["github"]["ref"].rsplit("/", 1)[-1]
    summary = runner_temp / "step_summary.md"
    defaults = {"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_WORKSPACE": str(workspace),
                "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": repository,
                "GITHUB_SHA": sha, "GITHUB_REF": ctx["github"]["ref"], "GITHUB_REF_NAME": ctx["github"]["ref_name"],
                "GITHUB_API_URL": api_url,
                "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(runner_temp), "RUNNER_OS": "Linux"}
    env = {**base_env, **defaults}
    for scope in (doc.get("env") or {}, job.get("env") or {}):
        for k, v in scope.items():
            env[k] = ctx["env"][k] = substitute(v, ctx)
    workdir_default = ((job.get("defaults") or {}).get("run") or {}).get("working-directory")
    result, status = JobRun(), "success"
    for i, step in enumerate(job["steps"]):
        name = step.get("name") or step.get("uses") or f"step {i}"
        cond = str(step.get("if", "success()"))
        cond = EXPR.sub(lambda m: m.group(1), cond)
        if not re.search(r"\b(always|success|failure|cancelled)\(", cond):
            cond = f"success() && ({cond})"
        reason = skip(step)
        if reason or not evaluate(cond, ctx, status):
            result.steps.append(StepRun(name, "skipped", stderr=reason or f"if: {cond}"))
            continue
        step_env = {**env, **{k: substitute(v, ctx) for k, v in (step.get("env") or {}).items()}}
        if "uses" in step:
            action = step["uses"].split("@")[0]
            handler = (uses or {}).get(action)
            with_ = {k: substitute(v, ctx) for k, v in (step.get("with") or {}).items()}
            if handler:
                handler(with_, step_env)
            result.steps.append(StepRun(name, "success"))
            continue
        output = runner_temp / f"output-{i}"
        output.write_text("")
        script = runner_temp / f"step-{i}.sh"
        script.write_text(step["run"])
        cwd = workspace / (step.get("working-directory") or workdir_default or ".")
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd,
                              env={**step_env, "GITHUB_OUTPUT": str(output)}, capture_output=True, text=True,
                              timeout=timeout)
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        outcome = "success" if proc.returncode == 0 else "failure"
        if "id" in step:
            ctx["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}
        result.steps.append(StepRun(name, outcome, proc.returncode, proc.stdout, proc.stderr))
        if outcome == "failure":
            status = "failure"
    return result
