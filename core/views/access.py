"""Who may launch and cancel runs.

Bound to localhost the app needs no login. Hosted (bound elsewhere, or HRM_GATE_HOSTED=1),
launching and cancelling need a signed-in user: Streamlit's OIDC login (st.login / st.user,
provider in .streamlit/secrets.toml) where one is configured, else a shared access token from
HRM_GATE_ACCESS_TOKEN. Browsing stays open unless HRM_GATE_BROWSE_NEEDS_LOGIN=1. The check runs
on the server side in `require_launch`, not only by hiding buttons.
"""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

LOCAL_ADDRESSES = {"127.0.0.1", "localhost", "::1", ""}


class AccessDenied(PermissionError):
    pass


@dataclass(frozen=True)
class Policy:
    hosted: bool
    oidc: bool
    token_configured: bool
    browse_needs_login: bool


def policy(server_address: str | None, oidc_configured: bool) -> Policy:
    hosted = os.environ.get("HRM_GATE_HOSTED") == "1" or (server_address or "") not in LOCAL_ADDRESSES
    return Policy(hosted=hosted, oidc=oidc_configured, token_configured=bool(os.environ.get("HRM_GATE_ACCESS_TOKEN")),
                  browse_needs_login=os.environ.get("HRM_GATE_BROWSE_NEEDS_LOGIN") == "1")


def token_ok(given: str | None) -> bool:
    expected = os.environ.get("HRM_GATE_ACCESS_TOKEN")
    return bool(expected and given) and hmac.compare_digest(expected.encode(), given.encode())


def may_launch(p: Policy, signed_in: bool) -> bool:
    return not p.hosted or signed_in


def require_launch(p: Policy, signed_in: bool) -> None:
    if not may_launch(p, signed_in):
        raise AccessDenied("sign in to launch or cancel runs on a hosted app")
