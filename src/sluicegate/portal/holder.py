"""Whose rows a portal call is about (its own module so `mine.py` and `call.py` can both use it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Holder:
    """Whose keys, usage, logs and balance a call is about: the signed-in user, or (`owner=team`) the
    team that user is an admin of. `column` is the `api_keys` column that says a key is theirs."""

    column: str  # "user_id" or "team_id"
    id: str
    name: str
    group: str

    @property
    def account(self) -> str:
        """The tenancy account of this holder: `user:<id>` or `team:<id>`."""
        return f"{'team' if self.column == 'team_id' else 'user'}:{self.id}"
