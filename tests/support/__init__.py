"""Test support kit: real collaborators for end-to-end tests.

- `upstream.Upstream`: a stand-in OpenAI-compatible upstream on a real loopback port, in a
  background thread with its own event loop, with scriptable behaviours (slow, failing, hanging,
  cutting streams...) and a record of every request it received.
- `schema`: the OpenAI OpenAPI spec as a JSON Schema validator, plus the stream rules the schema
  cannot express (`assert_stream`) and an SSE parser (`parse_sse`).
- `gateway`: the real gateway as a subprocess (`start_gateway`, `Gateway`) and the CLI (`run_cli`).
"""
