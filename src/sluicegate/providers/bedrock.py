"""Amazon Bedrock: the Converse / ConverseStream API, SigV4-signed by botocore.

`POST {base}/model/{modelId}/converse` (or `/converse-stream`, answered in AWS's binary event-stream
framing). Signing is botocore's `SigV4Auth` over the exact URL, headers and body sent, so it happens
here in `build()`, the one place that knows all three. Credentials come from the config
(`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`) or else the usual AWS chain
(environment, shared files, instance role), read through botocore; refreshable ones are frozen per
request (cheap for static keys; botocore refreshes role credentials ahead of expiry itself).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sluicegate.protocol.errors import BadRequest, UpstreamUnavailable
from sluicegate.providers.adapter import StreamDecoder, UpstreamRequest
from sluicegate.providers.bedrock_to_chat import ConverseToChatStream, converse_to_chat, error_to_openai
from sluicegate.providers.chat_to_bedrock import chat_to_converse
from sluicegate.providers.native_common import native_body, whole_answer


def aws_credentials(cfg: Any) -> Any:
    """The config's keys, or the default AWS chain's credentials (None when there are none)."""
    from botocore.credentials import Credentials
    from botocore.session import Session

    if cfg is not None and cfg.aws_access_key_id and cfg.aws_secret_access_key:
        return Credentials(cfg.aws_access_key_id, cfg.aws_secret_access_key, cfg.aws_session_token)
    return Session().get_credentials()


class Bedrock:
    api = "bedrock"
    wire = "bedrock"  # no inbound codec speaks it: every client is translated onto chat first
    forwarded_headers: frozenset[str] = frozenset()
    openai_fallback = False

    def __init__(self, region: str, credentials: Any) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        self.region = region
        self._credentials = credentials
        self._sigv4, self._request = SigV4Auth, AWSRequest

    def build(
        self,
        base_url: str,
        path: str,
        query: str,
        model: str | None,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamRequest:
        if path != "/v1/chat/completions" or body is None:
            raise BadRequest(f"{path} is not served by a Bedrock upstream.")
        chat, native = native_body(body, chat_to_converse)
        name = quote(str(chat.get("model") or model or ""), safe="")
        action = "converse-stream" if chat.get("stream") is True else "converse"
        url = f"{base_url}/model/{name}/{action}"
        if self._credentials is None:
            raise UpstreamUnavailable(
                "No AWS credentials for Bedrock (config or AWS chain).", code="upstream_auth_error"
            )
        request = self._request(method="POST", url=url, data=native, headers=headers)
        self._sigv4(self._credentials.get_frozen_credentials(), "bedrock", self.region).add_auth(request)
        return UpstreamRequest(url, dict(request.headers.items()), native)

    def stream_decoder(self) -> StreamDecoder:
        return ConverseToChatStream()

    def answer(self, data: bytes) -> bytes:
        return whole_answer(data, converse_to_chat)

    def error(self, status: int, body: bytes) -> bytes:
        return error_to_openai(status, body)
