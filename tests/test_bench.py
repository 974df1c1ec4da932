"""The efficiency benchmark's behaviour on small models (its figures come from `make bench`)."""
import pytest
import json

from core.lab.config import BenchConfig
from core.lab.bench import run_bench, run_bench_kv


@pytest.mark.slow
def test_bench_measures_every_figure_side_by_side(tmp_path, mbpp_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from core.models.tokenizer import load_tokenizer
    tok = load_tokenizer("hrm-bpe-16k").fast
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_layer=2, n_embd=64, n_head=2)).save_pretrained(tmp_path / "g")
    tok.save_pretrained(tmp_path / "g")
    baseline = f"hf:{tmp_path / 'g'}"
    threads = torch.get_num_threads()
    try:
        report = run_bench(BenchConfig(models=["hrm:tiny", baseline], out=str(tmp_path / "bench.json"), repeats=2,
                                       throughput_repeats=2, train_steps=1, data_path=str(mbpp_path), seq_len=64,
                                       batch=2, new_tokens=4, threads=1, device="cpu"))
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["candidate"] == "hrm:tiny" and saved["baseline"] == baseline
    tiny, gpt2 = saved["models"]["hrm:tiny"], saved["models"][baseline]
    assert tiny["params_nonembedding"] == 106_496 and gpt2["params_total"] > tiny["params_total"]
    assert tiny["trained"] is False and gpt2["trained"] is True
    for f in (tiny, gpt2):
        assert f["latency_ms"] > 0 and f["latency_check_ms"] > 0 and f["throughput_tok_s"] > 0
        assert f["peak_train_rss_mb"] > 100
        assert f["latency_ms_spread"][0] <= f["latency_ms"] <= f["latency_ms_spread"][1]
    from core.decide.kpi import format_efficiency
    from core.lab.bench import format_report
    text = format_report(report) + format_efficiency(report)
    assert "measured side by side in this run" in text and "Latency vs baseline" in text and "latency" in text
    assert saved["machine"]["cores"] and saved["torch_threads"] == 1  # --threads set and recorded
    assert "no generate()" in saved["decode_loop"] and saved["kpi_device"] == "cpu" and "gpu" not in tiny
    for f in (tiny, gpt2):
        assert f["throughput_spread"][0] <= f["throughput_tok_s"] <= f["throughput_spread"][1]
        assert f["throughput_rounds"] == f["latency_rounds"] == 2


def test_kv_cache_benchmark_reports_both_ways():
    r = run_bench_kv("hrm:tiny", context=64, new_tokens=4, repeats=1)
    assert r["with_cache_tok_s"] > 0 and r["without_cache_tok_s"] > 0
    assert set(r["with_cache_by_context"]) == {64, 256, 1024}
