"""Signing in and out of the portal: a password checked with argon2 off the event loop, throttled per
name and per address, and a session cookie (HttpOnly, SameSite=Strict, Secure over https) carrying a
token the tenancy store keeps only as its SHA-256 (`TenancyRepository.create_session`)."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from typing import Any

from sluicegate.portal.call import Call, check_same_origin, end_cookies, session_cookies, user_json
from sluicegate.protocol.errors import BadRequest, Forbidden, RateLimited, Unauthorized

log = logging.getLogger("sluicegate.portal")


def throttled(wait: int) -> RateLimited:
    return RateLimited(
        f"Too many failed sign-ins; try again in {wait} s.",
        code="login_throttled",
        headers={"retry-after": str(wait)},
    )


async def stored_password(engine: Any, name: str) -> tuple[str, str | None, bool] | None:
    """(user id, password hash, disabled) of the user named `name`, or None. Read here rather than
    through `TenancyRepository.verify_password`, which checks the hash on the event loop."""
    from sqlalchemy import select

    from sluicegate.store.schema import users

    u = users.c
    async with engine.connect() as conn:
        row = (await conn.execute(select(u.id, u.password_hash, u.disabled).where(u.name == name))).first()
    return None if row is None else (row[0], row[1], bool(row[2]))


@functools.cache
def _dummy_hash() -> str:
    from sluicegate.store.passwords import hash_password

    return hash_password(secrets.token_urlsafe(16))


async def login(call: Call) -> tuple[int, Any, list[tuple[str, str]]]:
    from sluicegate.store.passwords import check_password, needs_rehash

    check_same_origin(call)
    body = await call.json()
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name is required.", param="name", code="invalid_value")
    if not isinstance(password, str) or not password:
        raise BadRequest("password is required.", param="password", code="invalid_value")
    name = name.strip()
    throttle = call.portal.throttle
    subjects = (f"name:{name.lower()}", f"ip:{call.ctx.client_ip or ''}")
    wait = throttle.retry_after(*subjects)
    if wait:
        raise throttled(wait)
    found = await stored_password(call.gw.store.engine, name)
    # argon2 takes tens of milliseconds of CPU: off the event loop, which may be relaying streams.
    # An unknown name costs the same check, so the time taken does not tell which names exist.
    stored = found[1] if found is not None and found[1] else _dummy_hash()
    ok = await asyncio.to_thread(check_password, stored, password)
    if found is None or not found[1] or not ok:
        throttle.failed(*subjects)
        log.info("portal: failed sign-in from %s", call.ctx.client_ip)
        raise Unauthorized("Wrong name or password.", code="invalid_credentials")
    user_id, password_hash, disabled = found
    if disabled:
        raise Forbidden("This account is disabled; ask the operator.", code="user_disabled")
    throttle.succeeded(subjects[0])
    if password_hash and needs_rehash(password_hash):
        await call.gw.store.tenancy.update_user(user_id, password=password)
    body, cookies = await start_session(call, user_id)
    log.info("portal: %s signed in", user_id)
    return 200, body, cookies


async def start_session(call: Call, user_id: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A new session for `user_id`: the answer's body and the cookies that carry it (an operator's also
    opens the admin API, see `session_cookies`). Every way in (password, registration, single sign-on)
    ends here, so they all hold the same kind of session."""
    ttl = call.gw.settings.portal.session_ttl_h * 3600
    tenancy = call.gw.store.tenancy
    token, expires_at = await tenancy.create_session(user_id, ttl)
    session = await tenancy.session_user(token)
    assert session is not None
    return {"user": user_json(session), "expires_at": expires_at}, session_cookies(
        call, token, int(ttl), session.role
    )


async def logout(call: Call) -> tuple[int, Any, list[tuple[str, str]]]:
    check_same_origin(call)
    if call.token:
        await call.gw.store.tenancy.end_session(call.token)
    return 200, {"signed_out": True}, end_cookies(call)
