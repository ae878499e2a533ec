"""Plain records of object ownership (no SQLAlchemy: the request path imports them).

See store/objects.py for the table and server/objects.py for how the gateway uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

FILE = "file"
BATCH = "batch"
UPLOAD = "upload"
RESPONSE = "response"  # stored by an upstream serving the Responses API itself (server/responses_owned.py)
DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Owner:
    """Who an object belongs to: the key that made it, and that key's user and team when it has them."""

    key_id: str
    user_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class OwnedRef:
    """One row without its object: enough to decide access and where the object lives."""

    id: str
    kind: str
    channel: str
    owner: Owner
    state: str


@dataclass(frozen=True, slots=True)
class Charge:
    """A finished batch's charge, handed to the `charge=` hook once it is recorded (exactly once per batch
    by the poller that recorded it)."""

    batch_id: str
    owner: Owner
    prompt_tokens: int
    completion_tokens: int
    cost: float
    currency: str
