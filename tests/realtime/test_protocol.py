"""Protocol models: every message type, every bound at its limit and one past it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from worldgen._aio import backoff_delay
from worldgen.errors import ProtocolError
from worldgen.realtime.fanout import EventSignal, WakeSignal, parse_signal
from worldgen.realtime.protocol import (
    ChatIn,
    ErrorOut,
    HeartbeatIn,
    HelloIn,
    PingIn,
    PresenceEntry,
    PresenceOut,
    User,
    WorldOut,
    dump,
    parse_client_message,
    parse_server_event,
)
from worldgen.realtime.ratelimit import SlidingWindow
from worldgen.store.keys import Keys


def parse(message: dict[str, Any]) -> object:
    return parse_client_message(json.dumps(message))


def refused(message: dict[str, Any] | str) -> ProtocolError:
    frame = message if isinstance(message, str) else json.dumps(message)
    with pytest.raises(ProtocolError) as info:
        parse_client_message(frame)
    return info.value


def test_each_client_message_type_parses() -> None:
    assert isinstance(parse({"type": "hello"}), HelloIn)
    hello = parse({"type": "hello", "last_id": "1700000000000-3"})
    assert isinstance(hello, HelloIn)
    assert hello.last_id == "1700000000000-3"
    chat = parse({"type": "chat", "id": "a-1_B", "text": "hi", "extra": "ignored"})
    assert isinstance(chat, ChatIn)
    assert chat.text == "hi"
    ping = parse({"type": "ping", "x": -5, "y": 7, "label": "here"})
    assert isinstance(ping, PingIn)
    assert (ping.x, ping.y, ping.label, ping.id) == (-5, 7, "here", None)
    assert isinstance(parse({"type": "heartbeat"}), HeartbeatIn)


def test_text_bounds() -> None:
    assert isinstance(parse({"type": "chat", "id": "m1", "text": "x" * 2000}), ChatIn)
    assert isinstance(parse({"type": "chat", "id": "m1", "text": "é" * 2000}), ChatIn)
    err = refused({"type": "chat", "id": "m1", "text": "x" * 2001})
    assert err.error_code == "invalid_message"
    assert "text" in err.message
    assert err.ref == "m1"  # the client learns which message to stop retrying
    assert refused({"type": "chat", "id": "m1", "text": ""}).error_code == "invalid_message"


def test_label_coordinate_and_id_bounds() -> None:
    top = 2**31
    assert isinstance(parse({"type": "ping", "x": top, "y": -top, "label": "l" * 80}), PingIn)
    refused({"type": "ping", "x": top + 1, "y": 0})
    refused({"type": "ping", "x": 0, "y": -top - 1})
    refused({"type": "ping", "x": 0, "y": 0, "label": "l" * 81})
    assert isinstance(parse({"type": "chat", "id": "i" * 64, "text": "t"}), ChatIn)
    refused({"type": "chat", "id": "i" * 65, "text": "t"})
    refused({"type": "chat", "id": "has space", "text": "t"})


def test_types_are_strict() -> None:
    refused({"type": "ping", "x": "3", "y": 0})
    refused({"type": "ping", "x": 1.5, "y": 0})
    refused({"type": "chat", "id": 5, "text": "t"})
    refused({"type": "hello", "last_id": "not-an-id"})


def test_unknown_and_malformed_frames_get_codes_without_echoing_input() -> None:
    assert refused({"type": "shout", "text": "x"}).error_code == "unknown_type"
    assert refused("{not json").error_code == "invalid_json"
    assert refused("[1, 2]").error_code == "invalid_message"
    missing = refused({"text": "<script>"})
    assert missing.error_code == "invalid_message"
    assert "<script>" not in missing.message


def test_guest_identity_bounds() -> None:
    ok = parse({"type": "hello", "guest": {"id": "g-0123abcd", "name": "Ada Lovelace"}})
    assert isinstance(ok, HelloIn)
    assert ok.guest is not None
    assert ok.guest.name == "Ada Lovelace"
    refused({"type": "hello", "guest": {"id": "admin", "name": "x"}})
    refused({"type": "hello", "guest": {"id": "g-0123abcd", "name": "<img src=x>"}})
    refused({"type": "hello", "guest": {"id": "g-0123abcd", "name": "n" * 33}})


def test_server_messages_dump_compactly() -> None:
    assert json.loads(dump(ErrorOut(code="c", message="m"))) == {
        "type": "error",
        "code": "c",
        "message": "m",
    }
    entry = PresenceEntry(session="s1", user=User(id="g-1", name="n"))
    assert json.loads(dump(PresenceOut(left=entry)))["left"]["session"] == "s1"
    with pytest.raises(ValidationError):
        PresenceOut()
    with pytest.raises(ValidationError):
        PresenceOut(joined=entry, left=entry)
    event = parse_server_event({"type": "world", "event": "renamed", "world_id": "w", "name": "n"})
    assert isinstance(event, WorldOut)


def test_signals_round_trip_and_refuse_garbage() -> None:
    wake = parse_signal(WakeSignal(o="inst").model_dump_json().encode())
    assert isinstance(wake, WakeSignal)
    event = WorldOut(event="deleted", world_id="abcdefgh")
    got = parse_signal(EventSignal(o="inst", m=event).model_dump_json().encode())
    assert isinstance(got, EventSignal)
    assert got.m == event
    with pytest.raises(ValidationError):
        parse_signal(b"\x80\x04pickle")
    with pytest.raises(ValidationError):
        parse_signal(b'{"k":"event","o":"x","m":{"type":"chat"}}')


def test_sliding_window_admits_limit_then_refuses_until_the_window_moves() -> None:
    now = [0.0]
    window = SlidingWindow(3, 60.0, clock=lambda: now[0])
    assert [window.hit() for _ in range(4)] == [True, True, True, False]
    now[0] = 59.9
    assert not window.hit()
    now[0] = 60.0
    assert window.hit()


def test_backoff_is_capped_and_jittered() -> None:
    delays = [backoff_delay(a, 0.1, 2.0) for a in range(1, 40)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert max(backoff_delay(30, 0.1, 2.0) for _ in range(50)) <= 2.0
    assert min(backoff_delay(30, 0.1, 2.0) for _ in range(50)) >= 1.0


def test_realtime_keys_share_the_world_hash_tag() -> None:
    keys = Keys("wg")
    wid = "abcDEF12"
    tag = "{w:abcDEF12}"
    for key in (
        keys.chat(wid),
        keys.chat_dedup(wid, "user-1", "msg-1"),
        keys.presence(wid),
        keys.presence_users(wid),
        keys.world_channel(wid),
    ):
        assert tag in key
    with pytest.raises(ValueError, match="client message id"):
        keys.chat_dedup(wid, "user-1", "bad id!")
    with pytest.raises(ValueError, match="invalid world id"):
        keys.chat("no")
    with pytest.raises(ValueError, match="author id"):
        keys.chat_dedup(wid, "bad user!", "msg-1")
