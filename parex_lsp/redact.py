"""Secrets never leave parex in what it writes: API keys, secret-looking env values, URL credentials.

`Redactor.for_plan(plan)` collects the values to hide; `scrub(text)` replaces each with `***` and the
password of any `scheme://user:pass@host` URL with `***`. Pure and fast on large text: a substring test
per secret (linear, in C) before any replacement, and the URL pattern only where `://` and `@` occur.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parex_lsp.plan.model import Plan

MASK = "***"
MIN_SECRET = 6  # shorter values would mask ordinary words; no real key is this short
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|PASSWD|PWD|AUTH|CREDENTIAL|COOKIE", re.IGNORECASE)
# scheme://user:password@  — the password part is hidden, the user and host stay readable
URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@'\"<>]*):([^\s/@'\"<>]+)@")


def url_secrets(url: str | None) -> list[str]:
    """The password in a URL's userinfo (and a bare userinfo token, `https://token@host`)."""
    if not url or "@" not in url or "://" not in url:
        return []
    userinfo = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[0]
    if not userinfo:
        return []
    user, _, password = userinfo.partition(":")
    return [password] if password else [user]


def redact_url(url: str) -> str:
    """The URL with its userinfo password (or token) masked."""
    hidden = Redactor(url_secrets(url))
    return hidden.scrub(url)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        values = {s for raw in secrets if raw for s in (raw, raw.strip()) if len(s) >= MIN_SECRET}
        # Longest first, so a secret that contains another is masked whole.
        self.secrets: tuple[str, ...] = tuple(sorted(values, key=len, reverse=True))

    @classmethod
    def for_plan(cls, plan: Plan, environ: Mapping[str, str] | None = None) -> Redactor:
        return cls(plan_secrets(plan, os.environ if environ is None else environ))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if "@" in text and "://" in text:
            text = URL_CREDENTIALS.sub(rf"\1:{MASK}@", text)
        return text

    def scrub_data(self, value: Any) -> Any:
        """Scrub every string in a JSON-like value; returns the value itself when nothing changed."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            out = {k: self.scrub_data(v) for k, v in value.items()}
            return value if all(out[k] is value[k] for k in value) else out
        if isinstance(value, (list, tuple)):
            items = [self.scrub_data(v) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(items)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):  # an event's typed payload
            changed = {f.name: new for f in dataclasses.fields(value)
                       if (new := self.scrub_data(old := getattr(value, f.name))) is not old}
            return dataclasses.replace(value, **changed) if changed else value
        return value


def plan_secrets(plan: Plan, environ: Mapping[str, str]) -> list[str]:
    """The key of every agent's `api_key_env` (from its `env`, else the environment), its `env` values whose
    names look secret, the credentials in its `base_url`, and the values of `[run] env_passthrough`."""
    found: list[str] = []
    for agent in plan.agents.values():
        if agent.api_key_env:
            key = agent.env.get(agent.api_key_env) or environ.get(agent.api_key_env)
            if key:
                found.append(key)
        found += [v for k, v in agent.env.items() if isinstance(v, str) and SECRET_NAME.search(k)]
        found += url_secrets(agent.base_url)
    found += [environ[name] for name in plan.run.env_passthrough if environ.get(name)]  # sent to remote attempts
    return found
