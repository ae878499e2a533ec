"""Accounts people look after themselves: registering (when the operator opens it), changing one's own
password, and what the sign-in page may offer (`options`). Single sign-on is in oidc.py.

Passwords are hashed and checked with argon2 in a thread, off the event loop that relays streams.
Registration is throttled per client address (every attempt counts, a taken name too, so the 409 cannot
be used to list names quickly); a wrong current password counts as a failed sign-in for the name and
the address, so the password form is no way around the sign-in throttle.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from sluicegate.portal.call import Call, Conflict, check_same_origin, user_json
from sluicegate.portal.signin import start_session, stored_password, throttled
from sluicegate.protocol.errors import BadRequest, Forbidden, RateLimited, ServiceUnavailable

log = logging.getLogger("sluicegate.portal")

# A name a visitor may choose: letters (any script), digits, and . _ - @, not shaped like an id. The store
# takes any text up to 200 characters from the operator (CLI, admin API); strangers get a narrower rule.
NAME = re.compile(r"[^\W_][\w.@-]{1,63}")
ID_PREFIXES = ("usr_", "team_", "user:", "team:")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name is required.", param="name", code="invalid_value")
    name = name.strip()
    if not NAME.fullmatch(name) or name.lower().startswith(ID_PREFIXES):
        raise BadRequest(
            "A name has 2 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit.",
            param="name",
            code="invalid_name",
        )
    return name


def check_new_password(password: Any, name: str, min_length: int) -> str:
    """The password policy for passwords people choose: long enough, not too long, not their name."""
    from sluicegate.store.passwords import MAX_LENGTH

    if not isinstance(password, str) or len(password) < min_length:
        raise BadRequest(
            f"A password needs at least {min_length} characters.", param="password", code="password_too_short"
        )
    if len(password) > MAX_LENGTH:
        raise BadRequest(
            f"A password may have at most {MAX_LENGTH} characters.",
            param="password",
            code="password_too_long",
        )
    if password.strip().casefold() == name.casefold():
        raise BadRequest("The password may not be the name.", param="password", code="password_is_name")
    return password


async def _hash(password: str) -> str:
    from sluicegate.store.passwords import hash_password

    return await asyncio.to_thread(hash_password, password)


async def options(call: Call) -> tuple[int, Any, list[tuple[str, str]]]:
    """What the sign-in page may offer: registration, single sign-on (and its button's label)."""
    portal = call.gw.settings.portal
    oidc = portal.oidc
    return (
        200,
        {
            "registration": portal.registration.enabled,
            "sso": None if oidc is None else {"label": oidc.label, "start": "oidc/start"},
            "min_password_length": portal.registration.min_password_length,
        },
        [],
    )


async def register(call: Call) -> tuple[int, Any, list[tuple[str, str]]]:
    """`POST register {name, password}`: a new user in the configured group, signed in at once."""
    from sluicegate.store.tenancy_types import NameTaken, TenancyError

    check_same_origin(call)
    rules = call.gw.settings.portal.registration
    if not rules.enabled:
        raise Forbidden(
            "Registration is closed on this gateway; ask the operator for an account.",
            code="registration_closed",
        )
    body = await call.json()
    address = f"ip:{call.ctx.client_ip or ''}"
    throttle = call.portal.registrations
    wait = throttle.retry_after(address)
    if wait:
        raise RateLimited(
            f"Too many registrations from your address; try again in {wait} s.",
            code="registration_throttled",
            headers={"retry-after": str(wait)},
        )
    name = check_name(body.get("name"))
    password = check_new_password(body.get("password"), name, rules.min_password_length)
    throttle.failed(address)  # every attempt that reaches the database counts, successful or not
    try:
        user = await call.gw.store.tenancy.create_user(
            name, role=rules.role, group=rules.group, password_hash=await _hash(password)
        )
    except NameTaken:
        raise Conflict("That name is taken; choose another.", param="name", code="name_taken") from None
    except TenancyError as exc:  # the configured group does not exist (any more)
        log.warning("portal: registration cannot create users: %s", exc)
        raise ServiceUnavailable(
            "Registration is not working on this gateway; tell the operator.",
            code="registration_misconfigured",
        ) from None
    log.info("portal: %s registered from %s", user.id, call.ctx.client_ip)
    answer, cookies = await start_session(call, user.id)
    return 201, answer, cookies


async def change_password(call: Call) -> tuple[int, Any]:
    """`POST password {current, new}`: the signed-in user's own password; their other sessions end."""
    from sluicegate.store.passwords import check_password

    check_same_origin(call)
    body = await call.json()
    portal = call.gw.settings.portal
    user = call.user
    subjects = (f"name:{user.name.lower()}", f"ip:{call.ctx.client_ip or ''}")
    wait = call.portal.throttle.retry_after(*subjects)
    if wait:
        raise throttled(wait)
    new = check_new_password(body.get("new"), user.name, portal.registration.min_password_length)
    found = await stored_password(call.gw.store.engine, user.name)
    stored = found[1] if found is not None else None
    if stored:
        current = body.get("current")
        ok = isinstance(current, str) and await asyncio.to_thread(check_password, stored, current)
        if not ok:
            call.portal.throttle.failed(*subjects)
            log.info("portal: wrong current password for %s from %s", user.id, call.ctx.client_ip)
            raise Forbidden("The current password is wrong.", param="current", code="wrong_password")
    elif portal.oidc is None or not portal.oidc.allow_password:
        raise Forbidden(
            "You sign in with single sign-on; the operator does not let SSO users set a password.",
            code="password_not_allowed",
        )
    await call.gw.store.tenancy.update_user(user.id, password_hash=await _hash(new))
    ended = await call.gw.store.tenancy.end_other_sessions(user.id, call.token)
    log.info("portal: %s changed their password (%d other sessions ended)", user.id, ended)
    return 200, {"changed": True, "other_sessions_ended": ended, "user": user_json(user)}
