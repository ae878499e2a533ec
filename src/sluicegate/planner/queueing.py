"""Waiting at a given load: an M/M/c (Erlang C) approximation of a fleet of batch slots.

A setup running at batch ``B`` is ``B`` servers; ``R`` replicas are ``c = R·B`` servers. A
request holds a slot for ``S = TTFT + output / stream_speed`` seconds, so each slot serves
``μ = 1/S`` requests a second. With Poisson arrivals at ``λ`` requests/s::

    a    = λ / μ                    offered load in slots;  ρ = a / c  must stay < 1
    P_w  = ErlangC(c, a)            chance a request finds every slot busy
    W_q  = P_w / (c·μ − λ)          mean wait for a slot, added to the first token
    TTFT at load = TTFT_unloaded + W_q

Service times in LLM serving are closer to deterministic than exponential for a fixed request
shape, so M/M/c overstates the wait (M/D/c waits are roughly half as long at the same load);
the planner errs on the safe side. Arrivals burstier than Poisson need more margin: size on the
observed peak rate, not the daily mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def erlang_c(servers: int, offered: float) -> float:
    """Probability of waiting in M/M/c with ``servers`` servers and ``offered`` = λ/μ erlangs."""
    if servers <= 0:
        return 1.0
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    # Erlang B by the stable recursion, then C from B
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1 - rho + rho * b)


@dataclass(frozen=True)
class Load:
    servers: int
    utilization: float
    wait_probability: float
    mean_wait_s: float

    @property
    def stable(self) -> bool:
        return self.utilization < 1.0


def mmc(arrival_per_s: float, service_s: float, servers: int) -> Load:
    """Utilization and mean queueing delay of ``servers`` slots each busy ``service_s`` per request."""
    mu = 1.0 / service_s
    offered = arrival_per_s / mu
    rho = offered / servers if servers else math.inf
    if rho >= 1.0:
        return Load(servers, rho, 1.0, math.inf)
    pw = erlang_c(servers, offered)
    return Load(servers, rho, pw, pw / (servers * mu - arrival_per_s))


def replicas_for(
    arrival_per_s: float,
    service_s: float,
    slots_per_replica: int,
    ttft_s: float,
    max_ttft_s: float | None,
    limit: int = 4096,
) -> tuple[int, Load] | None:
    """Fewest replicas whose slots keep utilization below 1 and TTFT at load within ``max_ttft_s``."""
    if arrival_per_s <= 0:
        return 1, mmc(0.0, service_s, slots_per_replica)
    first = max(1, math.ceil(arrival_per_s * service_s / slots_per_replica))
    for r in range(first, limit + 1):
        load = mmc(arrival_per_s, service_s, r * slots_per_replica)
        if load.stable and (max_ttft_s is None or ttft_s + load.mean_wait_s <= max_ttft_s):
            return r, load
        if max_ttft_s is not None and ttft_s > max_ttft_s:
            return None
    return None
