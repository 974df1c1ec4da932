"""Who may launch and cancel runs, and who may sign in.

The app is local (no sign-in) only when its address is loopback AND explicitly set
(--server.address 127.0.0.1), no request came through a proxy (X-Forwarded-*/Forwarded headers, or
a Host that is not loopback) and HRM_GATE_HOSTED is off. Unset, Streamlit listens on every
interface, so the app is hosted. Hosted, launching and cancelling need a signed-in user:
Streamlit's OIDC login (st.login / st.user, provider in .streamlit/secrets.toml) where one is
configured, admitting only the emails and @domains of HRM_GATE_ALLOWED_EMAILS; else a shared access
token from HRM_GATE_ACCESS_TOKEN (at least min_token_length characters), with wrong guesses
throttled per client. Sign-ins expire after login_ttl_s. Browsing stays open unless
browse_needs_login. The checks run on the server side, not only by hiding buttons.
"""
from __future__ import annotations

import hmac
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

from core.views.config import AppConfig

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PROXY_HEADERS = ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-real-ip")


class AccessDenied(PermissionError):
    pass


@dataclass(frozen=True)
class Policy:
    hosted: bool
    oidc: bool
    token_configured: bool
    browse_needs_login: bool
    token_too_short: bool = False


def _host_is_loopback(host: str) -> bool:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8501
        return host[1:].split("]")[0] in LOOPBACK
    return host.rsplit(":", 1)[0] in LOOPBACK if host.count(":") == 1 else host in LOOPBACK


def is_local(server_address: str | None, headers: dict | None = None) -> bool:
    """Loopback explicitly, and the request came straight to it (no proxy in between)."""
    if (server_address or "").strip() not in LOOPBACK:
        return False
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if any(h in headers for h in PROXY_HEADERS):
        return False
    return "host" not in headers or _host_is_loopback(headers["host"])


def policy(server_address: str | None, oidc_configured: bool, headers: dict | None = None,
           cfg: AppConfig | None = None) -> Policy:
    cfg = cfg or AppConfig.from_env()
    token = os.environ.get("HRM_GATE_ACCESS_TOKEN") or ""
    return Policy(hosted=cfg.hosted or not is_local(server_address, headers), oidc=oidc_configured,
                  token_configured=len(token) >= cfg.min_token_length,
                  browse_needs_login=cfg.browse_needs_login, token_too_short=0 < len(token) < cfg.min_token_length)


def token_ok(given: str | None, cfg: AppConfig | None = None) -> bool:
    cfg = cfg or AppConfig.from_env()
    expected = os.environ.get("HRM_GATE_ACCESS_TOKEN") or ""
    if len(expected) < cfg.min_token_length or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def client_id(remote_ip: str | None, headers: dict | None = None) -> str:
    """Whom a login attempt counts against: the connection's address; for a connection from loopback (a
    reverse proxy on this machine), the last X-Forwarded-For hop, the one that proxy added (a client can
    prepend hops, not replace that one)."""
    if remote_ip and remote_ip not in LOOPBACK:
        return remote_ip
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    return hops[-1] if hops else "loopback"


class Throttle:
    """Wrong tokens per client: after `attempts` failures within `window_s`, the client is refused, right
    or wrong, until its oldest failure in the window is that old."""

    def __init__(self):
        self._fails: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, window_s: float, now: float) -> deque:
        q = self._fails.setdefault(client, deque())
        while q and now - q[0] > window_s:
            q.popleft()
        return q

    def locked_for(self, client: str, cfg: AppConfig, now: float | None = None) -> float:
        """Seconds until this client may try again (0: it may now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._recent(client, cfg.login_window_s, now)
            return max(0.0, cfg.login_window_s - (now - q[0])) if len(q) >= cfg.login_attempts else 0.0

    def fail(self, client: str, cfg: AppConfig, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(client, cfg.login_window_s, now).append(now)


THROTTLE = Throttle()  # one per server process: shared by every browser session


def token_login(given: str | None, client: str, cfg: AppConfig | None = None, throttle: Throttle = THROTTLE,
                now: float | None = None) -> tuple[bool, str]:
    """(signed in?, a line for the user). A locked-out client is refused without the token being compared."""
    cfg = cfg or AppConfig.from_env()
    wait = throttle.locked_for(client, cfg, now)
    if wait:
        return False, f"Too many wrong tokens from this client; try again in {wait:.0f} s."
    if token_ok(given, cfg):
        return True, "Signed in."
    throttle.fail(client, cfg, now)
    return False, "Wrong access token."


def email_allowed(email: str | None, allowed: str) -> bool:
    """Whether an OIDC account's email is in the allow-list (emails, and @domain for a whole domain)."""
    if not email or "@" not in email:
        return False
    email = email.strip().lower()
    for entry in (e.strip().lower() for e in allowed.split(",")):
        if entry and (email == entry or (entry.startswith("@") and email.endswith(entry))):
            return True
    return False


def login_fresh(signed_in_at: float | None, cfg: AppConfig, now: float | None = None) -> bool:
    """A token sign-in (its time.time()) still within login_ttl_s."""
    now = time.time() if now is None else now
    return signed_in_at is not None and 0 <= now - signed_in_at <= cfg.login_ttl_s


def may_launch(p: Policy, signed_in: bool) -> bool:
    return not p.hosted or signed_in


def require_launch(p: Policy, signed_in: bool) -> None:
    if not may_launch(p, signed_in):
        raise AccessDenied("sign in to launch or cancel runs on a hosted app")
