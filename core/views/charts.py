"""Altair chart specs shared by the app and the PDF report (rendered there by vl-convert)."""
from __future__ import annotations

import altair as alt
import pandas as pd

WIDTH = 520


def pass_at_k_bars(rows: list[dict], targets: dict[str, float] | None = None) -> alt.Chart:
    """Bars with their 95% CI; `targets` (k label -> the candidate's minimum, e.g. {"pass@1": 0.30}) drawn
    as dashed lines, higher is better."""
    df = pd.DataFrame(rows)
    df["who"] = df["model"].astype(str) + " · " + df["run"].astype(str)
    base = alt.Chart(df).encode(y=alt.Y("who:N", title=None, axis=alt.Axis(labelLimit=320)), color=alt.Color("k:N", title=None),
                                yOffset="k:N")
    bars = base.mark_bar().encode(x=alt.X("value:Q", title="pass@k, 95% CI over tasks (higher is better)",
                                          scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
                                  tooltip=["run", "model", "spec", "k", alt.Tooltip("value:Q", format=".1%"),
                                           alt.Tooltip("ci_low:Q", format=".1%"), alt.Tooltip("ci_high:Q", format=".1%"),
                                           alt.Tooltip("n_tasks:Q", format=",")])
    errors = base.mark_rule(color="black").encode(x="ci_low:Q", x2="ci_high:Q")
    chart = bars + errors
    if targets:
        t = pd.DataFrame([{"k": k, "target": v, "label": f"{k} ≥ {v:.0%}", "pos": -14 * i - 2}
                          for i, (k, v) in enumerate(targets.items())])
        rules = alt.Chart(t).mark_rule(strokeDash=[6, 3], size=2, color="#b3261e").encode(x="target:Q",
                                                                                          tooltip=["label"])
        text = alt.Chart(t).mark_text(align="left", dx=3, dy=-4, baseline="bottom", color="#b3261e").encode(
            x="target:Q", y=alt.Y("pos:Q", scale=None), text="label:N")
        chart = chart + rules + text
    return chart.properties(width=WIDTH, title=alt.TitleParams("Final pass@k per run (dashed: the candidate's "
                                                               "targets)", offset=14 * len(targets or {})))


def pass_vs_step(rows: list[dict]) -> alt.Chart:
    return alt.Chart(pd.DataFrame(rows)).mark_line(point=True).encode(
        x=alt.X("step:Q"), y=alt.Y("value:Q", title="pass@k", scale=alt.Scale(domain=[0, 1])),
        color="run:N", strokeDash="metric:N", tooltip=["run", "metric", "step", "value"]).properties(
        width=WIDTH, title="Pass@1 / Pass@10 vs step")


def efficiency_bars(rows: list[dict]) -> alt.Chart:
    """One panel per figure; the candidate's target (kpis.toml) as a dashed red line where it has one."""
    df = pd.DataFrame(rows)
    if "target" not in df:
        df["target"] = None
    better = {"latency (ms)": "lower is better", "peak train RSS (MB)": "lower is better",
              "params, non-embedding (M)": "lower is better", "throughput (tok/s)": "higher is better"}
    df["panel"] = df["metric"].map(lambda m: f"{m}, {better.get(m, '')}".rstrip(", "))
    bars = alt.Chart().mark_bar().encode(
        x=alt.X("value:Q", title=None), y=alt.Y("model:N", title=None, axis=alt.Axis(labelLimit=300)),
        color=alt.Color("role:N", title=None),
        tooltip=["model", "spec", "metric", alt.Tooltip("value:Q", format=",.1f"), alt.Tooltip("target:Q", format=",.1f")])
    rules = alt.Chart().mark_rule(color="#b3261e", strokeDash=[6, 3], size=2).encode(x="target:Q").transform_filter(
        "isValid(datum.target)")
    return alt.layer(bars, rules, data=df).properties(width=WIDTH - 120).facet(
        row=alt.Row("panel:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=260))
    ).resolve_scale(x="independent").properties(title="Efficiency vs baseline (dashed: the candidate's target)")


def training_lines(rows: list[dict]) -> alt.Chart:
    return alt.Chart(pd.DataFrame(rows)).mark_line().encode(
        x="step:Q", y=alt.Y("value:Q", title=None), color="metric:N", tooltip=["metric", "step", "value"]).properties(
        width=WIDTH - 160, height=80).facet(row=alt.Row("metric:N", title=None, header=alt.Header(
            labelAngle=0, labelAlign="left"))).resolve_scale(y="independent")


def val_loss_vs_flops(rows: list[dict], budget: float | None = None) -> alt.LayerChart | alt.Chart:
    """Validation loss against training FLOPs (log x), one line per model, the budget as a dashed rule."""
    chart = alt.Chart(pd.DataFrame(rows)).mark_line(point=True).encode(
        x=alt.X("flops:Q", title="training FLOPs (measured, log scale)", scale=alt.Scale(type="log", nice=False),
                axis=alt.Axis(format="~s")),
        y=alt.Y("val_loss:Q", title="validation loss (nats/token)", scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", title=None),
        tooltip=["model", alt.Tooltip("flops:Q", format=".3~e"), "step", "tokens", alt.Tooltip("val_loss:Q", format=".4f")])
    if budget:
        rule = alt.Chart(pd.DataFrame([{"flops": budget, "label": f"budget {budget:.3g}"}])).mark_rule(
            strokeDash=[6, 4], color="black").encode(x="flops:Q", tooltip=["label"])
        chart = chart + rule
    return chart.properties(width=WIDTH, title="Validation loss vs training FLOPs (compute-matched)")


def system_lines(rows: list[dict]) -> alt.Chart:
    return alt.Chart(pd.DataFrame(rows)).mark_line().encode(
        x=alt.X("time:T"), y=alt.Y("value:Q", title=None), color="metric:N", tooltip=["run", "metric", "value"]
    ).properties(width=WIDTH, title="System health")


def to_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    import vl_convert as vlc
    return vlc.vegalite_to_png(chart.to_json(), scale=scale)
