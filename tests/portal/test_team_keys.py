"""A team admin runs the team's keys in the portal (`owner=team`), on SQLite and PostgreSQL: lists,
creates (shown once, held to the team's group) and revokes them; a team key's requests are charged to
the team's balance and appear in the team's usage and logs; members, viewers and other teams' admins
cannot see or touch them, and a user's own lists never mix in the team's.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from support.portal_kit import PortalClient, Site, chat

from sluicegate.store import Store


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def team(site: Site, *, group: str | None = None, topup: int = 5_000_000) -> dict[str, Any]:
    """A team with an admin, a member and a viewer (all signed in), and a balance."""
    stamp = time.monotonic_ns() % 10_000_000
    people = {role: site.user(f"{role}-{stamp}") for role in ("lead", "member", "viewer")}

    async def make(store: Store) -> str:
        if group is not None:
            await store.tenancy.set_group(group, ratio=1.0, models=["gpt-4o"])
        t = await store.tenancy.create_team(f"team-{stamp}", **({"group": group} if group else {}))
        for role, uid in people.items():
            await store.tenancy.add_member(t.id, uid, {"lead": "team_admin"}.get(role, role))
        await store.tenancy.topup(f"team:{t.id}", topup, "budget")
        return t.id

    team_id = site.store(make)
    clients = {role: site.client().signed_in(f"{role}-{stamp}") for role in people}
    return {"id": team_id, "users": people, **clients}


def team_balance(lead: PortalClient) -> float:
    return float(lead.get("balance", owner="team").json()["balance"])


def test_a_team_admin_creates_uses_and_revokes_a_team_key(site: Site) -> None:
    t = team(site)
    lead: PortalClient = t["lead"]
    made = lead.http.post("/portal/api/keys", params={"owner": "team"}, json={"name": "ci"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["name"] == "ci" and body["key"].startswith("sk-sg-")
    listed = lead.get("keys", owner="team").json()["data"]
    assert [k["id"] for k in listed] == [body["id"]]
    assert lead.get("keys").json()["data"] == []  # the lead's own keys: not the team's

    async def stored(store: Store) -> tuple[Any, Any]:
        record = await store.keys.get(body["id"])
        return record.team_id, record.user_id

    assert site.store(stored) == (t["id"], None)
    before = team_balance(lead)
    answer = chat(site, body["key"])
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 15
    while team_balance(lead) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert team_balance(lead) < before  # charged to the team
    ledger = lead.get("balance", owner="team").json()["ledger"]
    assert ledger[0]["kind"] == "charge"
    while not lead.get("logs", owner="team").json()["data"] and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = lead.get("logs", owner="team").json()["data"]
    assert [r["key_id"] for r in logs] == [body["id"]] and logs[0]["key_name"] == "ci"
    assert lead.get("logs").json()["data"] == []
    while not lead.get("usage", owner="team").json()["data"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sum(r["requests"] for r in lead.get("usage", owner="team").json()["data"]) == 1
    revoked = lead.http.delete(
        f"/portal/api/keys/{body['id']}",
        params={"owner": "team"},
        headers={"content-type": "application/json"},
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    deadline = time.monotonic() + 5
    while chat(site, body["key"]).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert chat(site, body["key"]).status_code == 401


def test_members_viewers_and_other_teams_cannot_see_or_touch_team_keys(site: Site) -> None:
    t, other = team(site), team(site)
    key = t["lead"].http.post("/portal/api/keys", params={"owner": "team"}, json={"name": "shared"}).json()
    for role in ("member", "viewer"):
        client: PortalClient = t[role]
        for route in ("keys", "usage", "logs", "balance"):
            error(client.get(route, owner="team"), 403, "not_team_admin")
        made = client.http.post("/portal/api/keys", params={"owner": "team"}, json={"name": "x"})
        error(made, 403, "not_team_admin")
        assert client.get("keys").json()["data"] == []
    stranger: PortalClient = other["lead"]
    assert stranger.get("keys", owner="team").json()["data"] == []
    gone = stranger.http.delete(
        f"/portal/api/keys/{key['id']}",
        params={"owner": "team"},
        headers={"content-type": "application/json"},
    )
    error(gone, 404, "key_not_found")
    error(stranger.delete(f"keys/{key['id']}"), 404, "key_not_found")
    error(
        t["lead"].delete(f"keys/{key['id']}"), 404, "key_not_found"
    )  # without owner=team: not the lead's own
    error(t["lead"].get("keys", owner="nobody"), 400, "invalid_value")


def test_team_keys_are_held_to_the_teams_group(site: Site) -> None:
    group = f"narrow-{time.monotonic_ns() % 10_000_000}"
    t = team(site, group=group)
    lead: PortalClient = t["lead"]
    assert lead.get("me").json()["team"]["models"] == ["gpt-4o"]
    refused = lead.http.post(
        "/portal/api/keys", params={"owner": "team"}, json={"name": "k", "models": ["gpt-4o-mini"]}
    )
    error(refused, 400, "model_not_allowed")
    made = lead.http.post("/portal/api/keys", params={"owner": "team"}, json={"name": "k"})
    assert made.status_code == 201 and made.json()["models"] == ["gpt-4o"]


def test_the_key_limit_counts_the_teams_keys_apart_from_each_users(site: Site) -> None:
    t = team(site)
    lead: PortalClient = t["lead"]
    for n in range(3):  # max_keys_per_user is 3 on this site
        assert (
            lead.http.post("/portal/api/keys", params={"owner": "team"}, json={"name": f"t{n}"}).status_code
            == 201
        )
    error(
        lead.http.post("/portal/api/keys", params={"owner": "team"}, json={"name": "t3"}),
        403,
        "key_limit_reached",
    )
    assert lead.post("keys", {"name": "mine"}).status_code == 201
