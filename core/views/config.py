"""AppConfig: the hosted app's settings (who may sign in, how logins are throttled and expire, and the
caps on what a launch may cost), declared once here and read from the environment, HRM_GATE_<NAME>
(e.g. HRM_GATE_MAX_JOBS=4). A value that does not parse is one error line naming the variable.

Secrets are not settings: the access token stays in HRM_GATE_ACCESS_TOKEN, the OIDC provider in
.streamlit/secrets.toml.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from core.base.config import fields, setting
from core.base.errors import UsageError


@dataclass(frozen=True)
class AppConfig:
    hosted: bool = setting(False, "treat the app as hosted (sign-in needed) even when bound to loopback", cli=False,
                           table=None)
    browse_needs_login: bool = setting(False, "hosted: every screen needs a signed-in user", cli=False, table=None)
    allowed_emails: str = setting("", "OIDC: who may sign in, comma-separated emails and @domains "
                                  "(empty: nobody)", cli=False, table=None)
    min_token_length: int = setting(20, "the shared access token's minimum length (a shorter one disables it)",
                                    cli=False, table=None, minimum=1)
    login_ttl_s: int = setting(8 * 3600, "seconds a sign-in lasts", cli=False, table=None, minimum=1)
    login_attempts: int = setting(5, "wrong tokens a client may try per window before it is locked out", cli=False,
                                  table=None, minimum=1)
    login_window_s: int = setting(300, "the throttling window (and lock-out) in seconds", cli=False, table=None,
                                  minimum=1)
    max_jobs: int = setting(8, "jobs running at once, all users together", cli=False, table=None, minimum=0)
    max_jobs_per_user: int = setting(4, "jobs running at once per user (the first run starts 4)", cli=False, table=None, minimum=0)
    max_task_samples: int = setting(20_000, "an eval's tasks x samples per task at most", cli=False, table=None,
                                    minimum=1)
    max_steps: int = setting(5_000, "a training run's steps at most", cli=False, table=None, minimum=1)
    max_new_tokens: int = setting(1_024, "new tokens per sample (eval) or sequence (bench) at most", cli=False,
                                  table=None, minimum=1)
    max_resamples: int = setting(100_000, "the significance test's resamples at most, signed in", cli=False,
                                 table=None, minimum=100)
    anonymous_resamples: int = setting(2_000, "hosted: the resamples an anonymous visitor's significance test "
                                       "uses", cli=False, table=None, minimum=100)

    @staticmethod
    def env_name(name: str) -> str:
        return f"HRM_GATE_{name.upper()}"

    @classmethod
    def from_env(cls, environ=None) -> "AppConfig":
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(cls.env_name(f.name))
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            try:
                if kind is bool:
                    if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
                        raise ValueError(raw)
                    value = raw.lower() in ("1", "true", "yes")
                else:
                    value = kind(raw)
            except ValueError:
                raise UsageError(f"{cls.env_name(f.name)}={raw!r} is not a {kind.__name__}: {f.metadata['help']}") \
                    from None
            low = f.metadata["minimum"]
            if low is not None and value < low:
                raise UsageError(f"{cls.env_name(f.name)}={raw} is below its minimum {low}")
            values[f.name] = value
        return cls(**values)
