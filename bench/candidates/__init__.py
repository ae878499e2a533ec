"""Candidate relays for the server/client choice: each a minimal proxy, nothing else on it."""
