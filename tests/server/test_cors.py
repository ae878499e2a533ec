from sluicegate.config.model import CorsConfig
from sluicegate.server.cors import Cors


def test_disabled_by_default() -> None:
    c = Cors(CorsConfig())
    assert c.response_headers("https://a.example") == []
    assert c.preflight("https://a.example", "POST", None) is None


def test_allowed_origin_gets_headers_and_preflight() -> None:
    c = Cors(CorsConfig(allow_origins=["https://chat.example.com"]))
    h = dict(c.response_headers("https://chat.example.com"))
    assert h["access-control-allow-origin"] == "https://chat.example.com"
    assert "x-request-id" in h["access-control-expose-headers"]
    pre = dict(
        c.preflight("https://chat.example.com", "POST", "authorization, content-type, x-stainless-os") or []
    )
    assert "POST" in pre["access-control-allow-methods"]
    assert pre["access-control-allow-headers"] == "authorization, content-type, x-stainless-os"


def test_other_origin_gets_nothing() -> None:
    c = Cors(CorsConfig(allow_origins=["https://chat.example.com"]))
    assert c.response_headers("https://evil.example") == []
    assert c.preflight("https://evil.example", "POST", None) is None


def test_wildcard() -> None:
    c = Cors(CorsConfig(allow_origins=["*"]))
    assert dict(c.response_headers("https://any.example"))["access-control-allow-origin"] == "*"


def test_a_browser_client_may_read_the_budget_clamp_header() -> None:
    c = Cors(CorsConfig(allow_origins=["https://chat.example.com"]))
    h = dict(c.response_headers("https://chat.example.com"))
    assert "x-sluicegate-max-tokens-clamped" in h["access-control-expose-headers"]
