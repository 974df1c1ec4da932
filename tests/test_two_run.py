"""The standard two-run protocol: pass@1 (and the primary KPI) from the greedy pair, pass@10 from the sampled pair
(T 0.8, top_p 0.95, n 10), the sampled pass@1 kept labelled outside the verdict; the pipeline runs both pairs by
default, `gate --sampled-candidate/--sampled-baseline` decides on both, and `verify` re-derives both."""
import json

import pytest

from core.base.errors import UsageError
from core.decide.comparable import IncomparableError
from core.decide.gate import run_gate
from core.decide.verify import VerifyError, verify
from core.evaluation.config import EvalConfig
from core.evaluation.evaluate import run_eval
from core.flow.pipeline import Pipeline, load_config
from core.tasks.data import load_dataset
from tests.test_evaluate import cli, write_samples
from tests.test_protocol import gpt2_dir  # noqa: F401  (a 2-layer GPT-2 checkpoint with 1,024 positions)


def scored(tmp_path, mbpp_path, name, passes_per_task, n, timeout=10.0):
    """A run scored from a samples file: task i gets passes_per_task[i] reference solutions out of n. Each
    side's files share a name across pairs, so a side's main and sampled runs name the same 'model'."""
    tasks = load_dataset("mbpp", mbpp_path, "test", limit=len(passes_per_task)).tasks
    rows = [{"task_id": t.task_id, "completion": t.reference if j < c else ""}
            for t, c in zip(tasks, passes_per_task) for j in range(n)]
    pair, side = name.split("/")
    (tmp_path / pair).mkdir(exist_ok=True)
    samples = write_samples(tmp_path / pair / f"{side}.jsonl", rows)
    run_eval(EvalConfig(run_dir=str(tmp_path / name), samples=str(samples), data_path=str(mbpp_path),
                        limit=len(passes_per_task), timeout=timeout, progress=False))
    return str(tmp_path / name)


@pytest.fixture
def four_runs(tmp_path, mbpp_path):
    """Main pair (one sample a task) and sampled pair (ten a task) whose figures all differ."""
    return {"main": (scored(tmp_path, mbpp_path, "main/candidate", [1, 0, 0], 1),
                     scored(tmp_path, mbpp_path, "main/baseline", [0, 0, 0], 1)),
            "sampled": (scored(tmp_path, mbpp_path, "sampled/candidate", [10, 1, 0], 10),
                        scored(tmp_path, mbpp_path, "sampled/baseline", [2, 0, 0], 10))}


def test_pass_at_1_comes_from_the_main_pair_and_pass_at_10_from_the_sampled_pair(four_runs):
    (c, b), sampled = four_runs["main"], four_runs["sampled"]
    one = run_gate(c, b, ks=(1, 10), resamples=500).stats
    assert "pass_at_10" not in one and one["k_not_tested"] == [10]  # one run per side: pass@10 not measured

    s = run_gate(c, b, ks=(1, 10), resamples=500, sampled=sampled).stats
    assert s["pass_at_1"]["candidate"] == pytest.approx(1 / 3) and s["pass_at_1"]["baseline"] == 0
    assert s["pass_at_10"]["candidate"] == pytest.approx(2 / 3) and s["pass_at_10"]["baseline"] == pytest.approx(1 / 3)
    assert s["sampled_pass_at_1"]["candidate"] == pytest.approx(1.1 / 3)
    assert s["sampled_pass_at_1"]["baseline"] == pytest.approx(0.2 / 3)
    assert s["sampled_pass_at_1"]["role"].startswith("descriptive") and s["sampled_pass_at_1"]["p_value_holm"] is None
    assert s["sources"] == {"pass_at_1": "main", "pass_at_10": "sampled", "sampled_pass_at_1": "sampled"}
    assert s["pairs"]["main"]["candidate"] == c and s["pairs"]["sampled"]["baseline"] == sampled[1]
    assert s["inputs"]["sampled"]["candidate"]["path"] == sampled[0] and s["k_not_tested"] == []
    # the verdict reads pass@1 from the main pair and pass@10 from the sampled one
    kpis = {k["key"]: k for k in s["gate"]["kpis"]}
    assert kpis["pass_at_1"]["measured"] == pytest.approx(1 / 3) and kpis["pass_at_10"]["measured"] == pytest.approx(2 / 3)
    assert "[sampled pair:" in kpis["pass_at_10"]["label"] and "[sampled" not in kpis["pass_at_1"]["label"]
    assert s["power"]["n_tasks"] == 3 and s["mde"]["pass_at_1"] == s["pass_at_1"]["mde"]
    # Holm over the k's that decide (main pass@1, sampled pass@10), as for one pair
    assert s["pass_at_10"]["p_value_holm"] is not None and s["pass_at_1"]["p_value_holm"] is not None


def test_gate_command_takes_the_sampled_pair_and_verify_checks_both_pairs(four_runs, tmp_path):
    (c, b), (sc, sb) = four_runs["main"], four_runs["sampled"]
    out = tmp_path / "stats.json"
    proc = cli("gate", "--candidate", c, "--baseline", b, "--sampled-candidate", sc, "--sampled-baseline", sb,
               "--resamples", "500", "--out", out, check=False)
    assert proc.returncode == 4, proc.stderr
    assert "Pass@10 (candidate) [sampled pair: sampling unknown (samples file)]" in proc.stdout
    assert json.loads(out.read_text())["sources"]["pass_at_10"] == "sampled"
    lines = verify(out)
    assert any(line.startswith("sampled candidate:") for line in lines)
    assert any("both pairs" in line for line in lines)
    one = cli("gate", "--candidate", c, "--baseline", b, "--sampled-candidate", sc, check=False)
    assert one.returncode == 2 and "give both --sampled-candidate and --sampled-baseline" in one.stderr

    results = tmp_path / "sampled" / "candidate" / "results.jsonl"
    rows = results.read_text().splitlines()
    results.write_text("\n".join(rows[:-1] + [rows[-1].replace('"passed": false', '"passed": true')]) + "\n")
    with pytest.raises(VerifyError, match="sampled candidate results .* changed"):
        verify(out)


def test_a_sampled_pair_that_is_not_the_main_pairs_models_is_refused(four_runs, tmp_path, mbpp_path):
    (c, b), (sc, _) = four_runs["main"], four_runs["sampled"]
    other = scored(tmp_path, mbpp_path, "sampled/other", [0, 0, 0], 10)
    with pytest.raises(IncomparableError, match=r"baseline's sampled run .* differs from its main run .* in model"):
        run_gate(c, b, resamples=500, sampled=(sc, other))


def test_a_sampled_pair_whose_protocols_differ_is_refused(tmp_path, mbpp_path):
    common = dict(model="hrm:tiny", data_path=str(mbpp_path), limit=2, max_new_tokens=4, progress=False)
    runs = {name: str(tmp_path / name) for name in ("c", "b", "sc", "sb")}
    run_eval(EvalConfig(run_dir=runs["c"], **common))
    run_eval(EvalConfig(run_dir=runs["b"], **common))
    run_eval(EvalConfig(run_dir=runs["sc"], n=2, temperature=0.8, top_p=0.95, **common))
    run_eval(EvalConfig(run_dir=runs["sb"], n=2, temperature=0.7, top_p=0.95, **common))
    with pytest.raises(IncomparableError, match="differ in protocol.temperature: 0.8 vs 0.7"):
        run_gate(runs["c"], runs["b"], ks=(1, 2), resamples=500, sampled=(runs["sc"], runs["sb"]))
    # the same runs as a main pair: refused the same way (comparable.check on each pair)
    with pytest.raises(IncomparableError, match="protocol.temperature"):
        run_gate(runs["sc"], runs["sb"], ks=(1, 2), resamples=500)


# ---------------------------------------------------------------- the pipeline's [sampled] table
BASE = '[pipeline]\nout_dir = "{out}"\n[candidate]\nmodel = "hrm:tiny"\n[baseline]\nmodel = "oracle"\n'


def pipeline_of(tmp_path, extra=""):
    config = tmp_path / "p.toml"
    config.write_text(BASE.format(out=tmp_path / "out") + extra)
    return Pipeline(load_config(config), progress=False)


def test_the_sampled_pair_is_on_by_default_with_the_standard_protocol(tmp_path):
    pipe = pipeline_of(tmp_path)
    main, sampled = pipe.eval_config("candidate"), pipe.eval_config("candidate", sampled=True)
    assert (main.n, main.temperature, main.top_p) == (1, 0.0, 1.0)
    assert (sampled.n, sampled.temperature, sampled.top_p) == (10, 0.8, 0.95)
    assert sampled.run_dir == str(tmp_path / "out" / "candidate-sampled")
    # everything but the sampling is the main protocol's
    skip = {"n", "temperature", "top_p", "run_dir"}
    assert {k: v for k, v in vars(main).items() if k not in skip} == {k: v for k, v in vars(sampled).items() if k not in skip}
    assert pipe.run_names() == ["candidate", "baseline", "candidate-sampled", "baseline-sampled"]
    assert pipe.sampled_off() is None
    names = [s[0] for s in pipe.steps()]
    assert names.index("eval-baseline") < names.index("eval-candidate-sampled") < names.index("eval-baseline-sampled") \
        < names.index("collect")


def test_the_sampled_table_switches_off_and_a_samples_file_side_has_no_sampled_pair(tmp_path):
    off = pipeline_of(tmp_path, "[sampled]\nenabled = false\n")
    assert off.sampled_off().startswith("[sampled] enabled = false")
    assert dict((n, d) for n, d, _ in off.steps())["eval-candidate-sampled"] is None
    assert off.run_names() == ["candidate", "baseline"]
    (tmp_path / "s.jsonl").write_text('{"task_id": 11, "completion": ""}\n')
    config = tmp_path / "q.toml"
    config.write_text(BASE.format(out=tmp_path / "out").replace('model = "oracle"', f'samples = "{tmp_path / "s.jsonl"}"'))
    assert "scores a samples file" in Pipeline(load_config(config)).sampled_off()


@pytest.mark.parametrize("table, message", [
    ("[sampled]\ntemprature = 0.8\n", "unknown key 'temprature' in [sampled]"),
    ("[sampled]\nn = 'ten'\n", "n = 'ten' should be int"),
    ("[sampled]\nn = 0\n", "n (flag --n) must be >= 1"),
    ("[sampled]\ntemperature = 0\n", "[sampled] n = 10 at temperature 0 gives 10 identical greedy samples per task"),
])
def test_a_bad_sampled_table_is_one_line_naming_the_key(tmp_path, table, message):
    config = tmp_path / "p.toml"
    config.write_text(BASE.format(out=tmp_path / "out") + table)
    proc = cli("pipeline", "--config", config, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "out").exists()


def test_release_config_keeps_the_standard_ten(tmp_path):
    from core.base.settings import REPO_ROOT
    pipe = Pipeline(load_config(REPO_ROOT / "pipeline.toml", {"pipeline.out_dir": str(tmp_path / "out")}))
    assert (pipe.sampled_config().n, pipe.sampled_config().temperature, pipe.sampled_config().top_p) == (10, 0.8, 0.95)
    assert pipe.sampled_off() is None
    main = pipe.eval_config("baseline")
    assert (main.n, main.temperature) == (1, 0.0) and 10 in pipe.ks


@pytest.mark.slow
def test_the_default_pipeline_runs_both_pairs_with_identical_prompts(tmp_path, mbpp_path, gpt2_dir, monkeypatch):  # noqa: F811
    """Two real models (hrm:tiny, a 2-layer GPT-2) on 3 MBPP tasks under the default [sampled]: four runs,
    one prompt per task for all of them, pass@1 from the greedy pair, pass@10 from the sampled pair, one
    bootstrap per pair, and a stats.json that verify re-derives."""
    from core.decide import stats as stats_module
    config = tmp_path / "p.toml"
    config.write_text(f'[pipeline]\nout_dir = "{tmp_path / "out"}"\ndata_path = "{mbpp_path}"\nlimit = 3\n'
                      f'max_new_tokens = 8\nbatch = 3\n[candidate]\nmodel = "hrm:tiny"\n[baseline]\nmodel = "hf:{gpt2_dir}"\n'
                      '[gate]\nresamples = 500\n[wandb]\nmode = "off"\n[report]\nenabled = false\n')
    calls = []
    real = stats_module.compare
    monkeypatch.setattr(stats_module, "compare", lambda *a, **kw: calls.append(kw.get("k")) or real(*a, **kw))
    results = Pipeline(load_config(config), progress=False).run()
    ran = [r.name for r in results if r.status == "ran"]
    assert ran[:4] == ["eval-candidate", "eval-baseline", "eval-candidate-sampled", "eval-baseline-sampled"]
    assert calls == [1, 1, 10]  # the main pair: pass@1; the sampled pair: pass@1 and pass@10; once each

    out = tmp_path / "out"
    read = lambda run, name: (out / run / name).read_text()  # noqa: E731
    manifests = {r: json.loads(read(r, "manifest.json")) for r in ("candidate", "baseline", "candidate-sampled",
                                                                    "baseline-sampled")}
    assert manifests["candidate"]["protocol"] == manifests["baseline"]["protocol"]
    assert manifests["candidate-sampled"]["protocol"] == manifests["baseline-sampled"]["protocol"]
    greedy, sampled = manifests["candidate"]["protocol"], manifests["candidate-sampled"]["protocol"]
    assert (greedy["n"], greedy["temperature"]) == (1, 0.0)
    assert (sampled["n"], sampled["temperature"], sampled["top_p"]) == (10, 0.8, 0.95)
    assert {k: v for k, v in greedy.items() if k not in ("n", "temperature", "top_p")} == \
        {k: v for k, v in sampled.items() if k not in ("n", "temperature", "top_p")}
    prompts = {r: {(s["task_id"], s["prompt"]) for s in map(json.loads, read(r, "samples.jsonl").splitlines())}
               for r in manifests}
    assert len(prompts["candidate"]) == 3 and all(p == prompts["candidate"] for p in prompts.values())
    assert sum(1 for _ in read("baseline-sampled", "samples.jsonl").splitlines()) == 30

    stats = json.loads(read(".", "stats.json"))
    summary = {r: json.loads(read(r, "run_summary.json"))["pass_at_k"] for r in manifests}
    assert stats["pass_at_1"]["candidate"] == pytest.approx(summary["candidate"]["1"])
    assert stats["pass_at_10"]["baseline"] == pytest.approx(summary["baseline-sampled"]["10"])
    assert stats["sampled_pass_at_1"]["candidate"] == pytest.approx(summary["candidate-sampled"]["1"])
    assert stats["pairs"]["sampled"] == {"candidate": str(out / "candidate-sampled"),
                                         "baseline": str(out / "baseline-sampled"), "n": 10, "temperature": 0.8,
                                         "top_p": 0.95}
    assert stats["k_not_tested"] == [] and stats["sampled"]["comparability"]["accepted"] == []
    assert json.loads(read(".", "pipeline.json"))["sampled_protocol"]["temperature"] == 0.8
    assert any("both pairs" in line for line in verify(out / "stats.json"))

    again = Pipeline(load_config(config), progress=False).run()
    assert {r.status for r in again} <= {"skipped", "off"}


# ---------------------------------------------------------------- readers show which pair each figure came from
def test_the_pdf_labels_pass_at_10_and_the_sampled_pass_at_1_with_their_pair(four_runs):
    import io

    from pypdf import PdfReader

    from core.publish.report import build_report
    (c, b), sampled = four_runs["main"], four_runs["sampled"]
    stats = run_gate(c, b, ks=(1, 10), resamples=500, sampled=sampled).stats
    pdf = build_report(stats, c, b)
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "pass@10 (sampled pair: sampling unknown (samples file))" in text
    assert "pass@1 of the sampled runs (sampled pair: sampling unknown (samples file); not used for the verdict)" in text
    assert "Two-run protocol: pass@1, its delta, p, CI and power from the main pair" in text
    assert text.count("evaluated on") == 4  # the protocol table of all four runs


def test_the_wandb_gate_run_holds_pass_at_10_from_the_sampled_runs(four_runs, tmp_path, monkeypatch):
    from core.publish.tracking import log_gate, offline_files, read_offline_run, read_table
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (c, b), sampled = four_runs["main"], four_runs["sampled"]
    stats = run_gate(c, b, ks=(1, 10), resamples=500, sampled=sampled).stats
    log_gate(stats, (), "offline", tmp_path)
    run_file = next(iter(offline_files(tmp_path)))
    summary = read_offline_run(run_file)["summary"]
    assert summary["gate/pass_at_10_candidate"] == pytest.approx(2 / 3)
    assert summary["gate/pass_at_10_pair"] == "sampled: sampling unknown (samples file)"
    assert summary["gate/sampled_pass_at_1_candidate"] == pytest.approx(1.1 / 3)
    assert summary["gate/pass_at_1_candidate"] == pytest.approx(1 / 3)
    evidence = read_table(run_file, "gate/evidence")
    rows = [dict(zip(evidence["columns"], r)) for r in evidence["data"]]
    assert [(r["k"], r["pair"]) for r in rows] == [(1, "main"), (10, "sampled"), (1, "sampled")]
    assert rows[2]["role"].startswith("descriptive")
