"""Client addresses: X-Forwarded-For believed only from trusted proxies."""

from sluicegate.policy.network import client_address, parse_networks, peer_host

TRUSTED = parse_networks(["10.0.0.0/8"])


def test_peer_forms() -> None:
    assert peer_host("1.2.3.4:5678") == "1.2.3.4"
    assert peer_host("[::1]:80") == "::1"
    assert peer_host("::1") == "::1"


def test_header_ignored_without_trusted_proxies() -> None:
    assert client_address("203.0.113.9:1", "10.9.9.9", ()) == "203.0.113.9"


def test_header_ignored_from_untrusted_peer() -> None:
    assert client_address("203.0.113.9:1", "10.1.1.1", TRUSTED) == "203.0.113.9"


def test_rightmost_untrusted_hop_is_the_client() -> None:
    # the client wrote "10.1.1.1" itself to pass a network rule; our proxy appended the real address
    assert client_address("10.0.0.2:1", "10.1.1.1, 198.51.100.7", TRUSTED) == "198.51.100.7"


def test_chain_of_trusted_proxies() -> None:
    assert client_address("10.0.0.2:1", "198.51.100.7, 10.0.0.3", TRUSTED) == "198.51.100.7"


def test_several_header_lines_are_joined_in_order() -> None:
    # the client sent its own line naming an allowed address; our proxy added a second line
    assert client_address("10.0.0.2:1", ["10.1.1.1", "198.51.100.7"], TRUSTED) == "198.51.100.7"


def test_one_line_as_a_list_reads_like_the_string() -> None:
    assert client_address("10.0.0.2:1", ["198.51.100.7, 10.0.0.3"], TRUSTED) == "198.51.100.7"
