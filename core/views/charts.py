"""Altair chart specs shared by the app and the PDF report (rendered there by vl-convert)."""
from __future__ import annotations

import altair as alt
import pandas as pd

WIDTH = 520


def pass_at_k_bars(rows: list[dict]) -> alt.Chart:
    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(y=alt.Y("run:N", title=None), color=alt.Color("k:N", title=None),
                                yOffset="k:N")
    bars = base.mark_bar().encode(x=alt.X("value:Q", title="pass@k (95% CI over tasks)", scale=alt.Scale(domain=[0, 1])),
                                  tooltip=["run", "model", "k", alt.Tooltip("value:Q", format=".3f"),
                                           alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"),
                                           "n_tasks"])
    errors = base.mark_rule(color="black").encode(x="ci_low:Q", x2="ci_high:Q")
    return (bars + errors).properties(width=WIDTH, title="Final pass@k per run")


def pass_vs_step(rows: list[dict]) -> alt.Chart:
    return alt.Chart(pd.DataFrame(rows)).mark_line(point=True).encode(
        x=alt.X("step:Q"), y=alt.Y("value:Q", title="pass@k", scale=alt.Scale(domain=[0, 1])),
        color="run:N", strokeDash="metric:N", tooltip=["run", "metric", "step", "value"]).properties(
        width=WIDTH, title="Pass@1 / Pass@10 vs step")


def efficiency_bars(rows: list[dict]) -> alt.Chart:
    return alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=alt.X("value:Q", title=None), y=alt.Y("model:N", title=None), color=alt.Color("role:N", title=None),
        row=alt.Row("metric:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=200)), tooltip=["model", "metric", alt.Tooltip("value:Q", format=",.1f")]
    ).resolve_scale(x="independent").properties(width=WIDTH - 120, title="Efficiency vs baseline")


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
