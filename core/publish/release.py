"""Publishing a gate's outcome: the README badge, copies in results/, and Gate C7's release tag.

The badge shows the candidate's measured Pass@1, green at or above the KPI target (kpis.toml,
30% by default) and red below it; grey when nothing was measured. The release tag is made only
when the verdict is SUCCESS; a PARTIAL or FAILURE verdict never tags. Everything here reads a
decided gate (the stats.json document) and never calls the gate again.
"""
from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from core.base.errors import GateError
from core.base.settings import RELEASE_TAG
from core.base.store import atomic_write_json, atomic_write_text
from core.decide.stats import show_p
from core.publish.report import build_report
from core.publish.tracking import PROJECT

log = logging.getLogger(__name__)
GREEN, RED, GREY = "#4c1", "#e05d44", "#9f9f9f"
SAMPLED_SUMMARY = "run_summary_sampled.json"  # the sampled candidate's summary in results/ (two-run protocol)


class ReleaseError(GateError):
    pass


def badge_colour(pass_at_1: float | None, target: float) -> str:
    if pass_at_1 is None:
        return GREY
    return GREEN if pass_at_1 >= target else RED


def _text_width(text: str) -> int:
    """Width in px of 11px Verdana, close enough for a badge (shields.io measures the same font)."""
    narrow, wide = set("iIl.,:;!|' ()[]1"), set("mwMW@%")
    return sum(4 if c in narrow else 10 if c in wide else 7 for c in text) + 10


def badge_svg(pass_at_1: float | None, target: float = 0.30, label: str = "MBPP pass@1") -> str:
    value = "not measured" if pass_at_1 is None else f"{100 * pass_at_1:.1f}%"
    colour = badge_colour(pass_at_1, target)
    lw, vw = _text_width(label), _text_width(value)
    title = escape(f"{label}: {value} (green at >= {100 * target:.0f}%)")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{lw + vw}" height="20" role="img" aria-label="{title}">'
            f'<title>{title}</title>'
            f'<rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="{colour}"/>'
            '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
            f'<text x="{lw / 2:.1f}" y="14">{escape(label)}</text>'
            f'<text x="{lw + vw / 2:.1f}" y="14">{escape(value)}</text></g></svg>\n')


def write_badge(path: str | Path, pass_at_1: float | None, target: float = 0.30) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, badge_svg(pass_at_1, target))
    return path


README_START, README_END = "<!-- gate-badge:start -->", "<!-- gate-badge:end -->"


def wandb_link(run_url: str | None = None) -> str:
    """Markdown for the W&B dashboard: the run's page online, else the project when WANDB_ENTITY is known."""
    if run_url:
        return f"[W&B run]({run_url}) · [W&B dashboard]({run_url.split('/runs/')[0]})"
    entity = os.environ.get("WANDB_ENTITY")
    if entity:
        return f"[W&B dashboard](https://wandb.ai/{entity}/{PROJECT})"
    return (f"W&B dashboard: project `{PROJECT}`, logged offline where this was measured (no WANDB_API_KEY); "
            "`python -m core wandb-dashboard --entity ENTITY` saves it and prints its link")


def update_readme(readme: Path, results_dir: Path, stats: dict, run_url: str | None = None,
                  models: tuple[str | None, str | None] = (None, None)) -> bool:
    """Rewrite the badge block between README_START and README_END, if the README has one."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return False
    rel = Path(os.path.relpath(results_dir, readme.parent)).as_posix()
    block = (f"{README_START}\n[![MBPP pass@1]({rel}/badge.svg)]({rel}/stats.json) "
             f"verdict **{stats.get('verdict') or 'not decided'}** (`{models[0] or stats.get('candidate')}` vs "
             f"`{models[1] or stats.get('baseline')}`, {stats.get('n_tasks')} MBPP tasks) · {wandb_link(run_url)}\n"
             f"{README_END}")
    head, rest = text.split(README_START, 1)
    atomic_write_text(readme, head + block + rest.split(README_END, 1)[1])
    return True


def publish(results_dir: str | Path, stats: dict, candidate_run: str | Path, target: float) -> list[Path]:
    """Copies of the gate's stats.json and the candidate's run_summary.json (and, on the two-run protocol, the
    sampled candidate's as run_summary_sampled.json: where its pass@10 came from), and the badge. A sampled
    summary left by an earlier gate that this stats.json does not have is removed, so that results/ holds one
    gate's files."""
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "stats.json", stats)
    written = [out / "stats.json"]
    sampled = ((stats.get("pairs") or {}).get("sampled") or {}).get("candidate")
    for run, name in ((candidate_run, "run_summary.json"), (sampled, SAMPLED_SUMMARY)):
        summary = Path(run) / "run_summary.json" if run else None
        if summary is not None and summary.is_file():
            atomic_write_text(out / name, summary.read_text(encoding="utf-8"))
            written.append(out / name)
        elif name == SAMPLED_SUMMARY and (out / name).exists():
            (out / name).unlink()
            log.info("removed %s: this gate has no sampled pair", out / name)
    written.append(write_badge(out / "badge.svg", candidate_pass_at_1(stats), target))
    return written


def candidate_pass_at_1(stats: dict) -> float | None:
    """The candidate's Pass@1 in a stats.json (keyed by the candidate's label)."""
    return (stats.get("pass_at_1") or {}).get(stats.get("candidate"))


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ReleaseError("git is not installed; the release tag needs it") from None
    if proc.returncode != 0:
        raise ReleaseError(f"git {' '.join(args[:2])} failed in {repo}: {proc.stderr.strip().splitlines()[-1:] or ['?']}")
    return proc.stdout.strip()


@dataclass
class TagResult:
    tag: str
    commit: str
    created: bool


def tag_release(repo_dir: str | Path, tag: str, message: str) -> TagResult:
    """An annotated tag on HEAD. An existing tag on HEAD is fine (a rerun); on another commit it is an error."""
    repo = Path(repo_dir)
    if not tag or tag.startswith("-") or any(c.isspace() for c in tag):
        raise ReleaseError(f"--tag {tag!r} is not a usable tag name; pass one like {RELEASE_TAG}")
    _git(repo, "check-ref-format", f"refs/tags/{tag}")
    head = _git(repo, "rev-parse", "HEAD")
    existing = subprocess.run(["git", "-C", str(repo), "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"],
                              capture_output=True, text=True).stdout.strip()
    if existing:
        if existing == head:
            return TagResult(tag, head, created=False)
        raise ReleaseError(f"tag {tag} already exists on commit {existing[:12]}, not on HEAD {head[:12]}; "
                           "pass --tag with the next version")
    _git(repo, "-c", "user.name=hrm-codegen-gate", "-c", "user.email=gate@localhost", "tag", "-a", tag, "-m", message)
    log.info("tagged %s at %s", tag, head[:12])
    return TagResult(tag, head, created=True)


def publish_gate(stats: dict, candidate: str, baseline: str, results_dir: str, target: float,
                 models: tuple[str | None, str | None] = (None, None), bench: str | None = None,
                 train_run: str | None = None, release: bool = False, tag: str = RELEASE_TAG,
                 repo_dir: str = ".", run_url: str | None = None) -> list[str]:
    """Publish a decided gate into results_dir (and the README's badge block beside it); with release,
    also the summary PDF and (SUCCESS only) the tag. Returns one line per thing done."""
    written = publish(results_dir, stats, candidate, target)
    lines = [f"published {', '.join(str(p) for p in written)}"]
    readme = Path(results_dir).resolve().parent / "README.md"
    if update_readme(readme, Path(results_dir).resolve(), stats, run_url, models):
        lines.append(f"updated the badge block of {readme}")
    if not release:
        return lines
    pdf = build_report(stats, candidate, baseline, Path(results_dir) / "summary.pdf", bench=bench, train_run=train_run)
    lines.append(f"wrote {pdf}")
    if stats.get("verdict") != "SUCCESS":
        lines.append(f"not tagged: the verdict is {stats.get('verdict')}; only SUCCESS makes release {tag}")
        return lines
    summary = candidate_pass_at_1(stats)
    message = (f"HRM-CodeGen Gate SUCCESS: candidate {stats.get('candidate')} pass@1 "
               f"{100 * (summary or 0):.1f}% vs baseline {stats.get('baseline')}, "
               f"delta {100 * stats['pass_at_1']['delta']:+.1f} pp, p {show_p(decision_p(stats), stats.get('resamples'), stats['pass_at_1'].get('p_decision_method', ''))}")
    t = tag_release(repo_dir, tag, message)
    lines.append(f"tagged {t.tag} at {t.commit[:12]}" + ("" if t.created else " (already there)")
                 + f"; push it with: git push origin {t.tag}")
    return lines


def decision_p(stats: dict) -> float | None:
    """The p-value the gate decided on (pass@1, confirmatory)."""
    p1 = stats.get("pass_at_1") or {}
    return p1.get("p_value_decision", p1.get("p_value"))
