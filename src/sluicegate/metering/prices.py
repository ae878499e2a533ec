"""What a request cost: a price table per model, and the arithmetic.

Defaults ship in `metering/data/prices.yaml` (each with its source and date); the config's `prices:`
section overrides or extends them. Keys are model names or globs. A request is priced by the model
the upstream served, falling back to the public name the client asked for, so an alias
(`fast -> groq/llama-3.1-8b-instant`) is priced as what actually ran.

The table is built once by the app (reading the YAML is the only I/O, done at construction) and
answers lookups from a small cache, so pricing costs a dictionary lookup on the request path.
"""

from __future__ import annotations

import fnmatch
import importlib.resources
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

from sluicegate.metering.usage import Usage

CURRENCIES = ("USD", "CNY")
# What the log records as the currency of a request no price applied to (its cost is 0).
UNPRICED = ""
_PER = 1_000_000.0
_CACHE_LIMIT = 4096  # distinct (upstream, served, public, currency) lookups remembered


class PriceError(ValueError):
    """A price entry is malformed (negative, unknown currency, missing field)."""


@dataclass(frozen=True, slots=True)
class Price:
    """Prices per million tokens in one currency. `cached_input=None` bills cache hits as input;
    `cache_write_input=None` bills cache writes as input (Anthropic charges 1.25x input for them)."""

    input: float
    output: float
    cached_input: float | None = None
    currency: str = "USD"
    source: str = ""
    date: str = ""
    cache_write_input: float | None = None

    def cost(self, usage: Usage) -> float:
        """The cost of `usage` in this price's currency, unrounded.

        Cached tokens are a part of the prompt, billed at the cached price; reasoning tokens are a
        part of the completion, billed at the output price (as every provider does).
        """
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write_input is None else self.cache_write_input
        return (
            (usage.prompt_tokens - cached - written) * self.input
            + cached * cached_price
            + written * write_price
            + usage.completion_tokens * self.output
        ) / _PER


class Cost(NamedTuple):
    amount: float
    currency: str


def _field(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name, default)
    return getattr(entry, name, default)  # a pydantic PriceConfig from the Settings


def _number(entry: Any, name: str, key: str, required: bool) -> float | None:
    value = _field(entry, name)
    if value is None:
        if required:
            raise PriceError(f"price for {key!r} lacks {name!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PriceError(f"price for {key!r}: {name} must be a number >= 0, not {value!r}")
    return float(value)


def parse_price(key: str, entry: Any) -> Price:
    """One price from a YAML mapping or a config object with input/output/cached_input/currency."""
    currency = str(_field(entry, "currency", "USD") or "USD").upper()
    if currency not in CURRENCIES:
        raise PriceError(f"price for {key!r}: currency must be one of {CURRENCIES}, not {currency!r}")
    return Price(
        input=_number(entry, "input", key, True) or 0.0,
        output=_number(entry, "output", key, True) or 0.0,
        cached_input=_number(entry, "cached_input", key, False),
        cache_write_input=_number(entry, "cache_write_input", key, False),
        currency=currency,
        source=str(_field(entry, "source", "") or ""),
        date=str(_field(entry, "date", "") or ""),
    )


def _specificity(pattern: str) -> tuple[int, int]:
    literal = sum(1 for ch in pattern if ch not in "*?[]")
    return (literal, len(pattern))


class _Layer:
    """One set of entries (overrides, or defaults): exact names first, then globs by specificity."""

    __slots__ = ("exact", "globs")

    def __init__(self, entries: Mapping[str, tuple[Price, ...]]) -> None:
        self.exact: dict[str, tuple[Price, ...]] = {}
        globs: list[tuple[str, tuple[Price, ...]]] = []
        for key, prices in entries.items():
            name = key.lower()
            if any(ch in name for ch in "*?["):
                globs.append((name, prices))
            else:
                self.exact[name] = prices
        globs.sort(key=lambda item: _specificity(item[0]), reverse=True)
        self.globs = tuple(globs)

    def find(self, name: str) -> tuple[Price, ...] | None:
        found = self.exact.get(name)
        if found is not None:
            return found
        for pattern, prices in self.globs:
            if fnmatch.fnmatchcase(name, pattern):
                return prices
        return None


def _load_entries(raw: Mapping[str, Any]) -> dict[str, tuple[Price, ...]]:
    entries: dict[str, tuple[Price, ...]] = {}
    for key, entry in raw.items():
        prices = [parse_price(key, entry)]
        for alternative in _field(entry, "alternatives", None) or ():
            prices.append(parse_price(key, alternative))
        entries[str(key)] = tuple(prices)
    return entries


def _packaged() -> dict[str, Any]:
    text = (importlib.resources.files("sluicegate.metering") / "data" / "prices.yaml").read_text("utf-8")
    doc = yaml.safe_load(text) or {}
    return doc if isinstance(doc, dict) else {}


def load_default_prices() -> dict[str, tuple[Price, ...]]:
    """The packaged defaults, read from `metering/data/prices.yaml`."""
    return _load_entries(_packaged().get("models") or {})


def load_default_exchange_rates() -> dict[str, float]:
    """Units of each currency per USD, from the packaged file."""
    rates: dict[str, float] = {"USD": 1.0}
    for currency, entry in (_packaged().get("exchange_rates") or {}).items():
        rates[str(currency).upper()] = float(entry["rate"] if isinstance(entry, Mapping) else entry)
    return rates


class PriceTable:
    """Prices by model, with overrides layered over defaults.

    Lookup order, first hit wins: for the served name then the public name, the name scoped by
    upstream (`deepseek-cn/deepseek-chat`) then the bare name; within each, overrides before
    defaults, exact names before globs, longer globs before shorter. Names compare lowercased.
    """

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        defaults: Mapping[str, tuple[Price, ...]] | None = None,
        exchange_rates: Mapping[str, float] | None = None,
    ) -> None:
        """`overrides` is the config's `prices:` mapping; `defaults` None reads the packaged table.

        `exchange_rates` (units per USD, e.g. `{"CNY": 7.2}`) override the packaged ones.
        """
        rates = load_default_exchange_rates()
        for currency, rate in (exchange_rates or {}).items():
            if rate <= 0:
                raise PriceError(f"exchange rate for {currency!r} must be > 0")
            rates[currency.upper()] = float(rate)
        self._rates = rates
        layers = []
        if overrides:
            layers.append(_Layer(_load_entries(overrides)))
        layers.append(_Layer(load_default_prices() if defaults is None else defaults))
        self._layers = tuple(layers)
        self._cache: dict[tuple[str | None, str | None, str | None, str | None], Price | None] = {}

    @classmethod
    def from_mapping(cls, prices: Mapping[str, Any], *, with_defaults: bool = False) -> PriceTable:
        """A table of exactly `prices` (tests, or a deployment that wants no packaged defaults)."""
        return cls(prices, None if with_defaults else {})

    def _find(self, name: str) -> tuple[Price, ...] | None:
        for layer in self._layers:
            found = layer.find(name)
            if found is not None:
                return found
        return None

    def _candidates(self, served: str | None, public: str | None, upstream: str | None) -> Iterable[str]:
        for model in (served, public):
            if not model:
                continue
            name = model.lower()
            if upstream:
                yield f"{upstream.lower()}/{name}"
            yield name
            if "/" in name:  # "openai/gpt-4o" from routers that prefix the vendor
                yield name.rsplit("/", 1)[-1]

    def lookup(
        self,
        model: str | None,
        *,
        public_model: str | None = None,
        upstream: str | None = None,
        currency: str | None = None,
    ) -> Price | None:
        """The price that applies, or None when the model is unpriced.

        `currency` picks among an entry's alternatives (DeepSeek lists USD and CNY); without it, or
        when the entry has no price in that currency, the entry's first price applies.
        """
        key = (model, public_model, upstream, currency)
        try:
            return self._cache[key]
        except KeyError:
            pass
        price: Price | None = None
        for name in self._candidates(model, public_model, upstream):
            found = self._find(name)
            if found is not None:
                price = found[0]
                if currency:
                    for option in found:
                        if option.currency == currency.upper():
                            price = option
                            break
                break
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # client-chosen names must not grow memory without bound
        self._cache[key] = price
        return price

    def cost(
        self,
        model: str | None,
        usage: Usage,
        *,
        public_model: str | None = None,
        upstream: str | None = None,
        currency: str | None = None,
    ) -> Cost | None:
        """`(amount, currency)` of one request, or None when no price applies (the log then records
        cost 0 with currency `UNPRICED`)."""
        price = self.lookup(model, public_model=public_model, upstream=upstream, currency=currency)
        if price is None:
            return None
        return Cost(price.cost(usage), price.currency)

    def rate(self, currency: str) -> float | None:
        """Units of `currency` per USD, or None when no exchange rate is known."""
        return self._rates.get(currency.upper())

    def to_usd(self, cost: Cost) -> float:
        """The amount of `cost` in USD, for money budgets (which are kept in USD)."""
        rate = self._rates.get(cost.currency)
        if rate is None:
            raise PriceError(f"no exchange rate for {cost.currency!r}")
        return cost.amount / rate

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None
