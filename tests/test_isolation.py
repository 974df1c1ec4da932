"""The Runs and Accuracy screens say when a run's samples ran with reduced isolation."""
from core.base.store import RunDir
from core.sandbox.pool import Limits, SandboxPool
from core.views.isolation import reduced, reduced_runs


def test_a_real_pool_report_is_full_as_root_and_reduced_otherwise():
    with SandboxPool(1, Limits()) as pool:
        report = pool.isolation
    import os
    if os.geteuid() == 0:
        assert reduced(report) is None
    else:
        assert reduced(report)


def test_limits_only_and_shared_uid_are_named():
    why = reduced({"namespace_error": "[Errno 1] unshare: Operation not permitted", "user": "uid 1000 (the caller's own)"})
    assert "no namespaces" in why and "caller's own uid" in why
    assert reduced(None) is None


def test_reduced_runs_reads_manifests(tmp_path):
    good, bad = RunDir(tmp_path / "good"), RunDir(tmp_path / "bad")
    good.write_manifest({"kind": "eval", "sandbox": {"processes": "own PID namespace (nothing else visible or reachable)",
                                                      "user": "uid 1 (unprivileged, one per worker)"}})
    bad.write_manifest({"kind": "eval", "sandbox": {"namespace_error": "EPERM", "user": "uid 10001 (the caller's own)"}})
    assert set(reduced_runs([good, bad])) == {"bad"}
