"""Token budgets count everything a key ever spent: across a gateway restart, and when the budget is
given to a key that has already been used (a `total` budget means ever, not since it was set)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.deployment import CHAT_MESSAGES, Deployment, deploy, wait_until

CHAT = {"model": "gpt-4o-mini", "messages": CHAT_MESSAGES, "max_tokens": 4}
TOKENS_PER_CHAT = 8  # the stand-in's usage for CHAT: 4 prompt + 4 completion


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = deploy("sqlite", tmp_path_factory.mktemp("budgets"), metering={"flush_interval_s": 0.2})
    yield deployment
    deployment.close()


def chat(dep: Deployment, key: str) -> httpx.Response:
    return httpx.post(
        f"{dep.gateway.base_url}/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )


def logged_tokens(dep: Deployment, key_id: str) -> int:
    rows: list[dict[str, Any]] = dep.admin("GET", f"/admin/usage?key={key_id}").json()["data"]
    return sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)


def test_budget_given_to_a_used_key_counts_what_it_already_spent(dep: Deployment) -> None:
    created = dep.create_key()
    assert [chat(dep, created["key"]).status_code for _ in range(6)] == [200] * 6
    wait_until(
        lambda: logged_tokens(dep, created["id"]) == 6 * TOKENS_PER_CHAT, timeout=5, what="6 chats logged"
    )
    patched = dep.admin("PATCH", f"/admin/keys/{created['id']}", json={"budget_tokens": 5 * TOKENS_PER_CHAT})
    assert patched.status_code == 200
    refused = chat(dep, created["key"])
    assert refused.status_code == 429, "a key that spent 48 tokens was served under a 40-token total budget"
    assert refused.json()["error"]["code"] == "insufficient_quota"


def test_spent_budget_stays_spent_after_a_restart(dep: Deployment) -> None:
    created = dep.create_key(budget_tokens=100)
    served = 0
    while chat(dep, created["key"]).status_code == 200 and served < 50:
        served += 1
    assert 0 < served < 50
    dep.restart()
    refused = chat(dep, created["key"])
    assert refused.status_code == 429, f"after a restart the spent budget ({served} requests) was forgotten"
    assert refused.json()["error"]["code"] == "insufficient_quota"
