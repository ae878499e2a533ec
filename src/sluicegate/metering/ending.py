"""How a request ended, as one value, and what it is charged, as one pure function of that value.

Why one value: a request can end in many ways (answered, cut by the upstream, abandoned by the client,
ended by a shutdown or by its budget, timed out, refused by the upstream), and each used to be read off
a different flag. Deciding the charge from scattered flags is how an abandoned stream came to be
refunded; here every ending is named, and `charged` says for each what goes against the key's
token rate and budgets. The table test walks every ending (tests/metering/test_ending.py).

The rule: whatever reached the client, or what the upstream reported it produced, is charged (the
work was done, and an upstream's answer cannot be un-produced); an ending where nothing was delivered
(the upstream failed, or answered something unusable) charges nothing but the request itself.
"""

from __future__ import annotations

from enum import StrEnum

from sluicegate.metering.usage import Usage


class Ending(StrEnum):
    """How one request ended."""

    COMPLETED = "completed"  # the answer reached the client whole
    UPSTREAM_CUT = "upstream_cut"  # a stream broke after bytes reached the client
    UPSTREAM_INCOMPLETE = "upstream_incomplete"  # a whole answer arrived short or unusable: a 502
    CLIENT_GONE = "client_gone"  # the client left before the end
    SHUTDOWN = "shutdown"  # the gateway's shutdown ended it after the grace period
    BUDGET_REACHED = "budget_reached"  # the stream reached what its key's budget had left for it
    TIMEOUT = "timeout"  # the upstream stopped sending (first byte, idle or total timeout)
    UPSTREAM_ERROR = "upstream_error"  # the upstream answered an error or could not be reached
    REFUSED = "refused"  # the gateway answered itself before any upstream work (never admitted or 4xx)


# Endings whose usage (what the upstream reported, or what was relayed, counted) is charged.
_CHARGES_USAGE = frozenset(
    {
        Ending.COMPLETED,
        Ending.UPSTREAM_CUT,
        Ending.CLIENT_GONE,
        Ending.SHUTDOWN,
        Ending.BUDGET_REACHED,
        Ending.TIMEOUT,
    }
)


def charged(ending: Ending, usage: Usage | None) -> Usage | None:
    """What goes against the key's token rate and budgets; None: nothing but the request itself.

    `usage` is what was used, however it ended: the upstream's report, or the tokens of the prompt
    and of the text relayed so far, counted (None when no upstream work reached the gateway).
    """
    if ending in _CHARGES_USAGE:
        return usage
    return None
