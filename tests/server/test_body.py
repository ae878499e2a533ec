import pytest

from sluicegate.protocol.errors import InvalidJSON
from sluicegate.server.body import multipart_model, parse_json_object


def test_multipart_model_field_is_found() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\nRIFF....\r\n--b\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b--\r\n'
    )
    assert multipart_model(body) == "whisper-1"


def test_multipart_without_model() -> None:
    assert multipart_model(b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--') is None


@pytest.mark.parametrize("body", [b"", b"{bad", b"[1,2]", b"null"])
def test_bad_json_bodies_are_invalid_json(body: bytes) -> None:
    with pytest.raises(InvalidJSON):
        parse_json_object(body)
