"""The self-service portal: users sign in (a password, or OIDC single sign-on), or register when the
operator allows it, and manage their own password, balance, keys and usage.

Beside the request path, like the admin API: every portal request reads the store (sessions, the
user, their keys), which is fine because nothing on `/v1` waits for it. See docs/portal.md.
"""
