import pytest

from sluicegate.protocol.errors import BadRequest, InvalidJSON
from sluicegate.server.body import body_model, parse_json_object


def test_multipart_model_field_is_found() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\nRIFF....\r\n--b\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b--\r\n'
    )
    assert body_model("multipart/form-data; boundary=b", body, False) == (None, "whisper-1")


def test_multipart_without_model() -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--'
    assert body_model("multipart/form-data; boundary=b", body, False) == (None, None)


def test_json_only_endpoints_read_any_body_as_json() -> None:
    assert body_model("text/plain", b"[1]", False) == (None, None)
    with pytest.raises(InvalidJSON):
        body_model("text/plain", b"[1]", True)


def test_a_model_that_is_not_a_string_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        body_model("application/json", b'{"model": 3}', False)


@pytest.mark.parametrize("body", [b"", b"{bad", b"[1,2]", b"null"])
def test_bad_json_bodies_are_invalid_json(body: bytes) -> None:
    with pytest.raises(InvalidJSON):
        parse_json_object(body)
