"""Test support kit: real collaborators for end-to-end tests.

- `upstream.Upstream`: a stand-in OpenAI-compatible upstream on a real loopback port, in a
  background thread with its own event loop, with scriptable behaviours (slow, failing, hanging,
  cutting streams, gzip, HTML errors...) chosen per test (`.behaviour`), for the next requests
  (`.script(...)`), or per route (a model named `behaviour=hang`); it records every request
  (`.requests`, `.last`, `.authorizations`) and counts clients that went away (`.cancelled`).
- `schema`: the OpenAI OpenAPI spec as a JSON Schema validator (`SpecValidator.validate`), the
  stream rules the schema cannot express (`assert_stream`) and an SSE parser (`parse_sse`).
- `gateway`: the real gateway as a subprocess (`start_gateway` -> `Gateway`), the CLI (`run_cli`),
  an SDK client (`make_openai_client`), and the core tests' configuration (`core_config`, `Core`).

Fixtures (tests/conftest.py): `upstream`, `upstream_factory`, `spec` (session), `gateway_factory`,
`openai_client`, and `core` (a session-wide gateway on `core_config` with its stand-in, reset
before every test).
"""
