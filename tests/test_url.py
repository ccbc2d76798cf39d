"""URL parsing and route patterns."""

import re
import warnings

import pytest

import wsfake
from wsfake import URL, InvalidURL, Pattern, PatternError


def test_parse_fills_default_ports() -> None:
    assert URL.parse("ws://Example.com/chat") == URL("ws", "example.com", 80, "/chat", "")
    assert URL.parse("wss://example.com") == URL("wss", "example.com", 443, "/", "")
    assert URL.parse("ws://[::1]:8000/a?b=1").authority == "[::1]:8000"
    assert str(URL.parse("ws://localhost:8000/a%20b?x=1&y=2")) == "ws://localhost:8000/a%20b?x=1&y=2"


@pytest.mark.parametrize("bad", ["http://localhost/", "localhost:8000", "ws://", "ws://host:99999/"])
def test_parse_rejects_non_websocket_urls(bad: str) -> None:
    with pytest.raises(InvalidURL):
        URL.parse(bad)


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        ("ws://localhost:8000/ws", "ws://localhost:8000/ws", True),
        ("ws://localhost:8000/ws", "ws://localhost:8000/ws?token=1", True),
        ("ws://localhost:8000/ws", "ws://localhost:8001/ws", False),
        ("ws://localhost:8000/ws", "wss://localhost:8000/ws", False),
        ("ws://localhost/ws", "ws://localhost:80/ws", True),
        ("ws://localhost/ws", "ws://localhost:8000/ws", False),
        ("wss://api.example.com/feed", "wss://api.example.com:443/feed", True),
        ("ws://localhost:*/ws/*", "ws://localhost:8002/ws/room/7", True),
        ("ws://localhost:*/ws/*", "ws://localhost:8002/other", False),
        ("ws://*.example.com:*/*", "ws://eu.example.com:9000/x", True),
        ("ws://*.example.com:*/*", "ws://example.org:9000/x", False),
        ("*://localhost:8000/*", "wss://localhost:8000/x", True),
        ("ws://LOCALHOST:8000/ws", "ws://localhost:8000/ws", True),
        ("ws://localhost:8000/ws?room=*", "ws://localhost:8000/ws?room=3", True),
        ("ws://localhost:8000/ws?room=*", "ws://localhost:8000/ws?user=3", False),
    ],
)
def test_url_patterns(pattern: str, url: str, expected: bool) -> None:
    assert Pattern(pattern).matches(URL.parse(url)) is expected


def test_regex_pattern_matches_the_normalised_url() -> None:
    pattern = Pattern(re.compile(r"ws://localhost:\d+/chat/\d+"))
    assert pattern.matches(URL.parse("ws://localhost/chat/42"))  # normalised with :80
    assert not pattern.matches(URL.parse("ws://localhost/chat/x"))


def test_predicate_pattern() -> None:
    pattern = Pattern(lambda url: url.port >= 8000 and url.path.startswith("/v2/"))
    assert pattern.matches(URL.parse("ws://a:8001/v2/x"))
    assert not pattern.matches(URL.parse("ws://a:7000/v2/x"))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("http://localhost:8000/ws", r"only ws, wss or \* can be routed"),
        ("/ws/*", "malformed route pattern"),
        ("ws://:8000/ws", "has no host"),
        ("ws://localhost:port/ws", "invalid port"),
        ("ws://localhost:70000/ws", "invalid port"),
    ],
)
def test_malformed_patterns_are_explained(bad: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        Pattern(bad)


def test_pattern_of_wrong_type() -> None:
    with pytest.raises(PatternError, match="URL string, a compiled regex or a predicate"):
        Pattern(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern_host", ["localhost", "127.0.0.1", "[::1]"])
@pytest.mark.parametrize("url_host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_names_are_one_host(pattern_host: str, url_host: str) -> None:
    # One server on loopback answers all three; so does a route for any of them.
    assert Pattern(f"ws://{pattern_host}:8000/*").matches(URL.parse(f"ws://{url_host}:8000/ws"))
    assert not Pattern(f"ws://{pattern_host}:8000/*").matches(URL.parse("ws://example.com:8000/ws"))


def test_non_ascii_hosts_compare_in_their_idna_form() -> None:
    url = URL.parse("ws://bücher.example/ws")
    assert url.host == "xn--bcher-kva.example"
    assert Pattern("ws://bücher.example/*").matches(url)
    assert Pattern("ws://xn--bcher-kva.example/*").matches(URL("ws", "xn--bcher-kva.example", 80, "/", ""))


def test_a_route_shadowed_by_an_earlier_one_is_reported() -> None:
    net = wsfake.Network()
    net.route("ws://localhost:*/*", echo_target)
    with pytest.warns(wsfake.ShadowedRouteWarning, match=r"route ws://localhost:8000/ws can never serve"):
        net.route("ws://localhost:8000/ws", echo_target)
    net2 = wsfake.Network()
    net2.route("ws://localhost:8000/ws", echo_target)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net2.route("ws://localhost:8000/*", echo_target)  # more general after more specific: fine
        net2.route("wss://localhost:8000/ws", echo_target)  # another scheme
        net2.route(re.compile("ws://localhost:8000/.*"), echo_target)  # a regex cannot be compared: not reported


async def echo_target(ws: wsfake.ServerConnection) -> None:
    await ws.send("x")
