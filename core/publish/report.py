"""The summary PDF for the release gate: verdict, KPI table, statistics, efficiency, training
curves and the protocol/manifest behind them. Charts are the app's own Altair specs rendered
by vl-convert. `python -m core report --candidate RUN --baseline RUN --out FILE`.

It renders a decided gate (the stats.json document, verdict included) and never decides itself.
"""
from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.views import charts

from core.views import dashboard
from core.base.errors import GateError
from core.decide import comparable
from core.decide.gate import describe_power, metric_label, two_run_note
from core.decide.kpi import load_kpis
from core.decide.stats import show_p
from core.views.dashboard import STAT_KEYS
from core.views.fmt import pct, pp
from core.base.store import RunDir, read_json


def _png(chart, width_cm: float = 16) -> Image:
    data = charts.to_png(chart)
    img = Image(io.BytesIO(data))
    ratio = img.imageHeight / img.imageWidth
    img.drawWidth, img.drawHeight = width_cm * cm, width_cm * cm * ratio
    return img


def _table(rows, col_widths=None, header=True) -> Table:
    t = Table(rows, colWidths=col_widths, repeatRows=1 if header else 0)
    style = [("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
             ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey))
    t.setStyle(TableStyle(style))
    return t


def _pretraining(runs: list[str], styles) -> list:
    """The compute-matched section: validation loss vs FLOPs of both pretrainings and the corpus manifest."""
    rows, budget, final = dashboard.flops_curves([RunDir(r) for r in runs])
    out = [Paragraph("Compute-matched pretraining", styles["Heading2"])]
    if rows:
        out.append(_png(charts.val_loss_vs_flops(rows, budget), 15))
    keys = ("model", "params", "steps", "FLOPs", "tokens", "final val loss", "tokens/s (median)")
    out.append(_table([list(keys)] + [[f"{r[k]:.3g}" if k == "FLOPs" and r[k] else str(r[k]) for k in keys]
                                      for r in final]))
    corpus = (RunDir(runs[0]).manifest().get("protocol") or {}).get("corpus")
    if corpus and (Path(corpus) / "manifest.json").exists():
        out += [Spacer(1, 4), Paragraph("Corpus manifest", styles["Heading3"]),
                _table([[k, Paragraph(escape(v), styles["Normal"])]
                        for k, v in dashboard.corpus_rows(read_json(Path(corpus) / "manifest.json"))],
                       [3 * cm, 14 * cm], header=False)]
    return out


def build_report(stats: dict, candidate: str, baseline: str, out: str | Path | None = None, bench: str | None = None,
                 train_run: str | None = None, pretrain_runs: list[str] | None = None) -> Path | bytes:
    """The summary PDF of a decided gate (`stats`: the stats.json document with its verdict), written to
    `out`, or returned as bytes when out is None (the app offers it without writing a file)."""
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=7, leading=8)
    if not stats.get("verdict") or "gate" not in stats:
        raise GateError("this stats.json holds no verdict; run `python -m core gate` (or the pipeline) first")
    v = stats["gate"]
    story = [Paragraph("HRM-CodeGen Gate: summary", styles["Title"]),
             Paragraph(f"Verdict: <b>{v['verdict']}</b> &nbsp; (candidate {Path(candidate).name}, baseline "
                       f"{Path(baseline).name}; made {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", styles["Heading2"])]
    story += [Paragraph(f"- {r}", styles["Normal"]) for r in v["reasons"]]
    story += [Spacer(1, 6), Paragraph("KPIs", styles["Heading2"])]
    rows = [["KPI", "target", "measured", "held"]]
    rows += [[k["label"], k["target"], Paragraph(escape(str(k["shown"])), small),  # long figures wrap in their cell
              "not measured" if k["held"] is None else ("yes" if k["held"] else "NO")] for k in v["kpis"]]
    story.append(_table(rows, [6.5 * cm, 3 * cm, 5 * cm, 2.5 * cm]))
    story += [Spacer(1, 6), Paragraph("Statistics (paired by task)", styles["Heading2"])]
    srows = [["metric", "candidate", "baseline", "delta", "95% CI", "p-value", "superior"]]
    for key, s in stats.items():
        if key.startswith("pass_at_") or key == "sampled_pass_at_1":
            vals = [x for name, x in s.items() if name not in STAT_KEYS]
            srows.append([Paragraph(escape(metric_label(stats, key)), small), pct(vals[0]), pct(vals[1]), pp(s["delta"]),
                          f"[{pp(s['ci95'][0])}, {pp(s['ci95'][1])}]",
                          Paragraph(escape(f"{show_p(s.get('p_value_decision', s['p_value']), stats.get('resamples'), s.get('p_decision_method', ''))} "
                                           f"({s.get('role', '')}; {s.get('p_decision_method', '')})"), small),
                          str(s["superior"])])
    story.append(_table(srows))
    story.append(Paragraph(f"{stats['n_tasks']} tasks, {stats['resamples']} resamples, seed {stats['seed']}; "
                           f"{stats['method']['ci']}; p: the method named in each row (the exact McNemar test where "
                           f"each run has one sample per task, else {stats['method']['p_value']}).", styles["Normal"]))
    story += [Paragraph(escape(line), styles["Normal"]) for line in comparable.describe(stats)]
    if "sampled" in stats.get("pairs", {}):
        story.append(Paragraph(escape(two_run_note(stats)), styles["Normal"]))
    story.append(Paragraph(escape(describe_power(stats)), styles["Normal"]))
    acc = [r for run in (RunDir(candidate), RunDir(baseline)) for r in dashboard.pass_at_k_with_ci(run)]
    if acc:
        targets = load_kpis()["accuracy"]
        story.append(_png(charts.pass_at_k_bars(acc, {"pass@1": targets["pass_at_1_min"],
                                                      "pass@10": targets["pass_at_10_min"]})))
    if bench:
        b = read_json(Path(bench))
        story += [Paragraph("Efficiency", styles["Heading2"]),
                  Paragraph(f"Measured side by side on {b['machine']['cpu']} ({b['machine']['cores']} cores, GPU: "
                            f"{b['machine']['gpu']}), torch threads {b['torch_threads']}. This is the bench's "
                            "machine; each evaluation's own machine is in its protocol table below: pass/fail does "
                            "not depend on the machine, speed and memory do, so only the bench's figures are "
                            "compared.", styles["Normal"]),
                  _png(charts.efficiency_bars(dashboard.efficiency_rows(b)))]
    if train_run and RunDir(train_run).file("metrics.jsonl").exists():
        story += [Paragraph("Training", styles["Heading2"]),
                  _png(charts.training_lines(dashboard.training_rows(RunDir(train_run))), 14)]
    if pretrain_runs:
        story += _pretraining(pretrain_runs, styles)
    story.append(Paragraph("Protocol and manifest", styles["Heading2"]))
    sampled_runs = [stats["pairs"]["sampled"][side] for side in ("candidate", "baseline")
                    if "sampled" in stats.get("pairs", {}) and RunDir(stats["pairs"]["sampled"][side]).exists()]
    for path in (candidate, baseline, *sampled_runs):
        m = RunDir(path).manifest()
        ds, proto, mach = m.get("dataset", {}), m.get("protocol", {}), m.get("machine", {})
        story.append(_table([
            ["run", RunDir(path).run_id], ["model", str(m.get("model"))], ["trained", str(m.get("trained"))],
            ["dataset", f"{ds.get('name')}/{ds.get('split')}, {ds.get('n_tasks')} tasks, sha256 {ds.get('sha256', '')[:16]}..."],
            ["protocol", f"prompt {proto.get('prompt')}, n {proto.get('n')}, T {proto.get('temperature')}, top_p "
                         f"{proto.get('top_p')}, max_new_tokens {proto.get('max_new_tokens')}, timeout {proto.get('timeout_s')} s"],
            ["commit", str(m.get("git_commit"))], ["evaluated on", f"{mach.get('cpu')} ({mach.get('cores')} cores, GPU {mach.get('gpu')})"],
        ], [3 * cm, 14 * cm], header=False))
        story.append(Spacer(1, 4))
    target = io.BytesIO() if out is None else Path(out)
    if out is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
    SimpleDocTemplate(target if out is None else str(target), pagesize=A4, title="HRM-CodeGen Gate summary",
                      leftMargin=1.5 * cm, rightMargin=1.5 * cm, topMargin=1.5 * cm, bottomMargin=1.5 * cm).build(story)
    return target.getvalue() if out is None else target
