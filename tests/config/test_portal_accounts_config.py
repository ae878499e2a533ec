"""`portal.registration` and `portal.oidc`: defaults, the rules on their values, and the client secret
masked wherever settings are shown."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sluicegate.config.model import Settings

SECRET = "very-secret-client-value-123"


def settings(**portal: Any) -> Settings:
    return Settings.model_validate({"portal": {"enabled": True, **portal}})


def oidc(**more: Any) -> dict[str, Any]:
    return {
        "issuer": "https://sso.example.com/realms/staff",
        "client_id": "gw",
        "client_secret": SECRET,
        **more,
    }


def test_registration_and_single_sign_on_are_off_by_default() -> None:
    portal = Settings().portal
    assert portal.registration.enabled is False and portal.oidc is None
    assert (portal.registration.group, portal.registration.role) == ("default", "member")


def test_single_sign_on_defaults_create_nobody_and_let_no_sso_user_set_a_password() -> None:
    config = settings(oidc=oidc()).portal.oidc
    assert config is not None
    assert config.scopes == ["openid", "profile", "email"]
    assert (config.create_users, config.allow_password, config.role) == (False, False, "member")


@pytest.mark.parametrize(
    "portal",
    [
        {"oidc": oidc(scopes=["profile"])},  # openid is what makes it OIDC
        {"oidc": oidc(issuer="sso.example.com")},
        {"oidc": oidc(role="operator")},  # nobody becomes an operator by signing in
        {"registration": {"enabled": True, "role": "team_admin"}},
        {"registration": {"min_password_length": 4}},
    ],
)
def test_unsafe_values_are_refused(portal: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**portal)


def test_the_client_secret_is_masked_when_settings_are_shown() -> None:
    shown = settings(oidc=oidc()).dump_masked()
    assert SECRET not in str(shown)
    assert shown["portal"]["oidc"]["client_id"] == "gw"


def test_allowed_domains_are_compared_in_lower_case_without_an_at() -> None:
    config = settings(oidc=oidc(allowed_domains=["@Example.COM", " "])).portal.oidc
    assert config is not None and config.allowed_domains == ["example.com"]
