"""The summary PDF read back: its figures are stats.json's, in the one format every surface uses."""
import io

from pypdf import PdfReader

from core.decide.gate import describe_power, run_gate
from core.decide.stats import show_p
from core.publish.report import build_report
from core.views.fmt import pct, pp


def test_pdf_numbers_are_the_stats_json_numbers(oracle_and_empty):
    oracle, empty = oracle_and_empty
    gate = run_gate(str(oracle), str(empty), ks=(1,), resamples=1000)
    pdf = build_report(gate.stats, str(oracle), str(empty))
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    s = gate.stats["pass_at_1"]
    assert f"Verdict: {gate.stats['verdict']}" in text
    # in %, pp and the one p format, as on every other surface (a newcomer found fractions here)
    for figure in (pct(s["oracle"]), pct(s["empty"]), pp(s["delta"]), f"[{pp(s['ci95'][0])}, {pp(s['ci95'][1])}]",
                   show_p(s["p_value_decision"], gate.stats["resamples"], s["p_decision_method"]),
                   " ".join(describe_power(gate.stats).split()), "confirmatory"):
        assert figure in text, figure
    assert f"{s['delta']:+.3f}" not in text
    # the footnote names the test that decides, not only the permutation p (a newcomer found it naming the other)
    assert "p: the method named in each row (the exact McNemar test where each run has one sample per task" in text
    kpi_p = next(k for k in gate.stats["gate"]["kpis"] if k["key"] == "p_value")
    assert kpi_p["measured"] == s["p_value_decision"]  # the KPI table decides on the published p


def test_pdf_explains_why_two_machines_are_named(oracle_and_empty):
    """Issue 17: page 1 named the bench's CPU and the evaluation's CPU without saying why."""
    from core.base.settings import RESULTS_DIR
    oracle, empty = oracle_and_empty
    bench = str(RESULTS_DIR / "bench.json")
    gate = run_gate(str(oracle), str(empty), ks=(1,), resamples=200, bench=bench)
    pdf = build_report(gate.stats, str(oracle), str(empty), bench=bench)
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "This is the bench's machine; each evaluation's own machine is in its protocol table below" in text
    assert text.count("evaluated on") == 2
