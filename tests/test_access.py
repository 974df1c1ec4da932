"""Who may sign in and launch (core.views.access) and the app's settings (core.views.config)."""
import pytest

from core.base.errors import UsageError
from core.views import access
from core.views.config import AppConfig

TOKEN = "a-team-token-of-24-chars"


def test_sign_in_is_required_when_the_address_is_unset(monkeypatch):
    """Issue 16: with --server.address unset Streamlit listens on every interface, yet the app asked no sign-in."""
    monkeypatch.delenv("HRM_GATE_HOSTED", raising=False)
    for address in (None, "", "0.0.0.0", "::", "10.1.2.3"):
        assert access.policy(address, False, cfg=AppConfig()).hosted, address
    with pytest.raises(access.AccessDenied):
        access.require_launch(access.policy(None, False, cfg=AppConfig()), signed_in=False)
    for address in ("127.0.0.1", "localhost", "::1"):  # loopback, explicitly: a developer's machine
        assert not access.policy(address, False, {"Host": "localhost:8501"}, cfg=AppConfig()).hosted
    assert access.policy("127.0.0.1", False, cfg=AppConfig(hosted=True)).hosted


def test_a_reverse_proxy_to_loopback_is_hosted():
    """Issue 16: behind a reverse proxy to 127.0.0.1 the app asked no sign-in either."""
    for headers in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}, {"X-Real-Ip": "1.2.3.4"},
                    {"Host": "gate.example.org"}, {"host": "gate.example.org:443"}):
        assert access.policy("127.0.0.1", False, headers, cfg=AppConfig()).hosted, headers
    assert not access.policy("127.0.0.1", False, {"Host": "127.0.0.1:8501"}, cfg=AppConfig()).hosted
    assert not access.policy("::1", False, {"Host": "[::1]:8501"}, cfg=AppConfig()).hosted


def test_a_short_token_is_no_login(monkeypatch):
    monkeypatch.setenv("HRM_GATE_ACCESS_TOKEN", "short")
    p = access.policy(None, False, cfg=AppConfig())
    assert not p.token_configured and p.token_too_short
    assert not access.token_ok("short", AppConfig())
    monkeypatch.setenv("HRM_GATE_ACCESS_TOKEN", TOKEN)
    assert access.policy(None, False, cfg=AppConfig()).token_configured and access.token_ok(TOKEN, AppConfig())
    assert not access.token_ok("", AppConfig()) and not access.token_ok(TOKEN[:-1], AppConfig())


def test_token_guessing_is_throttled_per_client(monkeypatch):
    """Issue 16: the token login had no throttling."""
    monkeypatch.setenv("HRM_GATE_ACCESS_TOKEN", TOKEN)
    cfg, throttle = AppConfig(login_attempts=3, login_window_s=60), access.Throttle()
    for i in range(3):
        assert access.token_login(f"guess-{i}", "203.0.113.9", cfg, throttle, now=100.0 + i) == (False, "Wrong access token.")
    ok, message = access.token_login(TOKEN, "203.0.113.9", cfg, throttle, now=103.0)
    assert not ok and "Too many wrong tokens" in message and "57 s" in message  # the right token too, while locked
    assert access.token_login(TOKEN, "198.51.100.7", cfg, throttle, now=103.0)[0]  # another client is not locked
    assert access.token_login(TOKEN, "203.0.113.9", cfg, throttle, now=161.0)[0]  # the window has passed


def test_logins_expire():
    cfg = AppConfig(login_ttl_s=3600)
    assert access.login_fresh(1000.0, cfg, now=1000.0 + 3599)
    assert not access.login_fresh(1000.0, cfg, now=1000.0 + 3601)
    assert not access.login_fresh(None, cfg, now=1000.0)


def test_oidc_allow_list():
    """Issue 16: any account the identity provider accepted could launch."""
    allowed = "ann@example.org, @team.example.com"
    assert access.email_allowed("ann@example.org", allowed) and access.email_allowed("Bob@Team.Example.com", allowed)
    for email in ("eve@example.org", "eve@evilteam.example.com", "eve@team.example.com.evil.net", None, "",
                  "team.example.com"):
        assert not access.email_allowed(email, allowed), email
    assert not access.email_allowed("ann@example.org", "")  # no allow-list: nobody


def test_app_config_from_the_environment():
    cfg = AppConfig.from_env({"HRM_GATE_MAX_JOBS": "9", "HRM_GATE_HOSTED": "true", "HRM_GATE_ALLOWED_EMAILS": "@x.org"})
    assert (cfg.max_jobs, cfg.hosted, cfg.allowed_emails, cfg.max_steps) == (9, True, "@x.org", AppConfig().max_steps)
    with pytest.raises(UsageError, match="HRM_GATE_MAX_JOBS='many' is not a int"):
        AppConfig.from_env({"HRM_GATE_MAX_JOBS": "many"})
    with pytest.raises(UsageError, match="HRM_GATE_MIN_TOKEN_LENGTH=0 is below its minimum"):
        AppConfig.from_env({"HRM_GATE_MIN_TOKEN_LENGTH": "0"})


def test_oidc_dependency_and_secrets_file_are_in_place():
    """Issue 16: Authlib was missing (st.login crashed) and .streamlit/secrets.toml was ignored by neither
    git nor Docker."""
    import subprocess
    from streamlit.auth_util import is_authlib_installed
    from tests.conftest import REPO
    assert is_authlib_installed()
    assert any(line.lower().startswith("authlib==") for line in (REPO / "requirements.txt").read_text().splitlines())
    assert subprocess.run(["git", "check-ignore", "-q", ".streamlit/secrets.toml"], cwd=REPO).returncode == 0
    assert ".streamlit/secrets.toml" in (REPO / ".dockerignore").read_text().split()


def test_login_attempts_count_against_the_client_not_the_proxy():
    assert access.client_id("203.0.113.9", {"X-Forwarded-For": "1.1.1.1"}) == "203.0.113.9"  # direct: no trust
    assert access.client_id(None, {"X-Forwarded-For": "9.9.9.9, 198.51.100.7"}) == "198.51.100.7"  # the proxy's hop
    assert access.client_id(None, {}) == access.client_id("127.0.0.1") == "loopback"
