"""The operator's catalog: upstreams, model routes, channel switches and prices beside the YAML file.

`fields` reads and shows them (JSON bodies that mirror the YAML, errors with field paths, secrets
masked), `service` changes them with an audit entry each, and `effective` merges the file and the
store into the Settings a gateway serves from. The admin API and the CLI both go through `service`,
so a change made either way is the same change.
"""
