"""The portal's pure parts: login throttling over a fake clock, and the page's two dictionaries."""

from __future__ import annotations

import json
import re
from importlib import resources

from sluicegate.portal.throttle import LoginThrottle

STATIC = resources.files("sluicegate.portal").joinpath("static")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_below_the_limit_do_not_throttle() -> None:
    throttle = LoginThrottle(5, 300, Clock())
    for _ in range(4):
        throttle.failed("name:alice", "ip:1.2.3.4")
    assert throttle.retry_after("name:alice", "ip:1.2.3.4") == 0


def test_the_fifth_failure_throttles_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(5, 300, clock)
    for _ in range(5):
        throttle.failed("name:alice")
        clock.now += 10
    # The first failure was at 1000; it leaves the window at 1300; now is 1050.
    assert throttle.retry_after("name:alice") == 250
    assert throttle.retry_after("name:bob") == 0
    clock.now = 1300.5
    assert throttle.retry_after("name:alice") == 0


def test_either_subject_throttles_a_sign_in() -> None:
    throttle = LoginThrottle(2, 60, Clock())
    throttle.failed("name:a", "ip:9.9.9.9")
    throttle.failed("name:b", "ip:9.9.9.9")
    assert throttle.retry_after("name:c", "ip:9.9.9.9") > 0
    assert throttle.retry_after("name:a", "ip:8.8.8.8") == 0


def test_success_clears_the_name_but_not_the_address() -> None:
    throttle = LoginThrottle(2, 60, Clock())
    throttle.failed("name:a", "ip:9.9.9.9")
    throttle.failed("name:a", "ip:9.9.9.9")
    throttle.succeeded("name:a")
    assert throttle.retry_after("name:a") == 0
    assert throttle.retry_after("ip:9.9.9.9") > 0


def test_both_languages_have_every_string_the_page_uses() -> None:
    dictionary = json.loads(STATIC.joinpath("i18n.json").read_text(encoding="utf-8"))
    assert set(dictionary) == {"en", "zh-CN"}
    assert set(dictionary["en"]) == set(dictionary["zh-CN"])
    assert all(v.strip() for lang in dictionary.values() for v in lang.values())
    html = STATIC.joinpath("index.html").read_text(encoding="utf-8")
    script = "\n".join(
        STATIC.joinpath(name).read_text(encoding="utf-8") for name in ("portal.js", "playground.js")
    )
    used = set(re.findall(r'data-i18n(?:-placeholder|-title)?="([^"]+)"', html))
    used |= set(re.findall(r"\bt\('([a-z_.]+)'", script))
    # The gateway's refusals the playground says in the reader's language (PLAY_ERRORS in playground.js).
    refusals = re.search(r"PLAY_ERRORS = \[([^\]]+)\]", script)
    assert refusals is not None
    used |= {f"play.error.{code}" for code in re.findall(r"'([a-z_]+)'", refusals.group(1))}
    used |= {f"play.role_{role}" for role in ("user", "assistant", "system")} | set(
        re.findall(r"label: '([a-z_.]+)'", script)
    )
    # Keys built from values: roles, ledger kinds, key states, and the error codes a user can act on.
    for prefix, values in {
        "role": ("operator", "team_admin", "member", "viewer"),
        "ledger.kind": ("charge", "topup", "redeem", "refund"),
        "keys.status": ("active", "revoked", "expired", "disabled"),
        "error": ("invalid_credentials", "login_throttled", "user_disabled", "code_unknown",
                  "code_redeemed", "code_expired", "key_limit_reached", "read_only_role",
                  "registration_closed", "registration_throttled", "name_taken", "invalid_name",
                  "password_too_short", "password_too_long", "password_is_name", "wrong_password",
                  "password_not_allowed", "sso_expired", "sso_failed", "sso_refused", "sso_unknown_user",
                  "sso_user_disabled", "sso_domain_not_allowed", "sso_unavailable"),
    }.items():  # fmt: skip
        used |= {f"{prefix}.{v}" for v in values}
    assert used - set(dictionary["en"]) == set()
    # Chinese is really Chinese, not English copied over (the language switch's label aside).
    english_left = [
        k for k, v in dictionary["zh-CN"].items() if v == dictionary["en"][k] and k != "redeem.placeholder"
    ]
    assert english_left == []


def test_a_gateway_without_single_sign_on_never_loads_authlib() -> None:
    """authlib and joserfc cost about 9 MB per worker: only portal/oidc.py imports them, on demand."""
    import subprocess
    import sys

    code = (
        "import sys, sluicegate.server.app, sluicegate.portal.api, sluicegate.portal.accounts;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('authlib', 'joserfc')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
