"""How a request ended decides what it is charged: one table, every ending."""

from __future__ import annotations

import pytest

from sluicegate.metering.ending import Ending, charged
from sluicegate.metering.usage import Usage
from sluicegate.server.context import RequestContext
from sluicegate.server.recording import ending_of

USED = Usage(prompt_tokens=12, completion_tokens=30, estimated=True)

# ending -> whether the usage (reported, or the prompt and the text relayed, counted) is charged
TABLE = {
    Ending.COMPLETED: True,
    Ending.UPSTREAM_CUT: True,
    Ending.UPSTREAM_INCOMPLETE: False,
    Ending.CLIENT_GONE: True,
    Ending.SHUTDOWN: True,
    Ending.BUDGET_REACHED: True,
    Ending.TIMEOUT: True,
    Ending.UPSTREAM_ERROR: False,
    Ending.REFUSED: False,
}


def test_the_table_names_every_ending() -> None:
    assert set(TABLE) == set(Ending)


@pytest.mark.parametrize(("ending", "charges_usage"), sorted(TABLE.items()))
def test_each_ending_is_charged_its_usage_or_nothing_but_the_request(
    ending: Ending, charges_usage: bool
) -> None:
    assert charged(ending, USED) == (USED if charges_usage else None)


@pytest.mark.parametrize("ending", sorted(Ending))
def test_an_ending_with_no_upstream_work_charges_nothing(ending: Ending) -> None:
    assert charged(ending, None) is None


def ctx(**fields: object) -> RequestContext:
    c = RequestContext("/v1/chat/completions", "POST", "127.0.0.1", None)
    c.upstream = "up"
    for name, value in fields.items():
        setattr(c, name, value)
    return c


@pytest.mark.parametrize(
    ("fields", "ending"),
    [
        ({"status": 200}, Ending.COMPLETED),
        ({"status": 200, "upstream": None}, Ending.REFUSED),
        ({"status": 429, "upstream": None, "error_type": "insufficient_quota"}, Ending.REFUSED),
        ({"status": 499, "client_gone": True, "meter": object()}, Ending.CLIENT_GONE),
        ({"status": 503, "cut_for_shutdown": True, "client_gone": True}, Ending.SHUTDOWN),
        ({"status": 502, "error_type": "upstream_disconnected", "meter": object()}, Ending.UPSTREAM_CUT),
        ({"status": 504, "error_type": "upstream_timeout", "meter": object()}, Ending.TIMEOUT),
        ({"status": 504, "error_type": "upstream_timeout"}, Ending.TIMEOUT),
        ({"status": 500, "error_type": "upstream_500"}, Ending.UPSTREAM_ERROR),
        ({"status": 400}, Ending.UPSTREAM_ERROR),
        (
            {"status": 429, "error_type": "budget_exceeded", "ending": Ending.BUDGET_REACHED},
            Ending.BUDGET_REACHED,
        ),
        ({"status": 502, "error_type": "upstream_incomplete"}, Ending.UPSTREAM_INCOMPLETE),
        ({"status": 502, "error_type": "upstream_bad_response"}, Ending.UPSTREAM_INCOMPLETE),
        # a stream that stopped without [DONE] or a finish_reason: billed for what was relayed
        ({"status": 502, "error_type": "upstream_stream_incomplete", "meter": object()}, Ending.UPSTREAM_CUT),
    ],
)
def test_the_ending_is_read_off_what_the_shell_saw(fields: dict[str, object], ending: Ending) -> None:
    assert ending_of(ctx(**fields)) == ending
