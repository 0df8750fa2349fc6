"""Redaction: what must never leave, what must stay readable, and the round trip."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r2local import keys
from r2local.privacy import Redaction, Redactor, StreamRestorer, luhn_ok

from .conftest import CLOUD_KEY

PRIVATE = {
    "EMAIL": ["bob.smith@example.co.uk", "a+tag@mail.example.org"],
    "PHONE": ["+44 20 7946 0958", "(555) 123-4567", "555.123.4567", "+1-202-555-0143"],
    "IP": ["192.168.1.20", "10.0.0.1", "2001:db8::8a2e:370:7334", "fe80::1"],
    "SECRET": [
        "sk-proj-abcdefghijklmnopqrstuvwx1234", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "AKIAIOSFODNN7EXAMPLE",
        "xoxb-1234567890-abcdefghij", "AIzaSyA1234567890abcdefghijklmnopqrstuv", "hf_abcdefghijklmnopqrstuvwxyz123456",
        "d41d8cd98f00b204e9800998ecf8427e", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlc2ln",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo",
    ],
    "CARD": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
}
PUBLIC = [
    "12 + 30 = 42", "the train leaves at 9:40 and arrives 12:15:30", "on 2026-01-01", "pi is 3.14159",
    "4111 1111 1111 1112", "version 3.11", "/usr/local/lib/python3.11/site-packages/openai/_base_client.py",
    "call me maybe", "1234567", "a ratio of 3:4:5", "x = 123456789", "https://example.com/docs",
]


@pytest.mark.parametrize("template", ["Please look at {} today.", "It is {}.", "({})"])
@pytest.mark.parametrize("kind, value", [(k, v) for k, vs in PRIVATE.items() for v in vs])
def test_private_values_are_replaced_and_restored(kind, value, template):
    text = template.format(value)
    [msg], red = Redactor().messages([{"role": "user", "content": text}])
    assert value not in msg["content"]
    assert f"[{kind}_1]" in msg["content"], msg["content"]
    assert red.counts[kind] == 1 and red.total == 1
    assert red.restore(msg["content"]) == text


@pytest.mark.parametrize("text", PUBLIC)
def test_ordinary_text_is_left_alone(text):
    [msg], red = Redactor().messages([{"role": "user", "content": text}])
    assert msg["content"] == text and red.total == 0


def test_same_value_same_placeholder_and_counts_every_item():
    text = "bob@x.io wrote to amy@y.io, then bob@x.io again; password: hunter22."
    [msg], red = Redactor().messages([{"role": "user", "content": text}])
    assert msg["content"] == "[EMAIL_1] wrote to [EMAIL_2], then [EMAIL_1] again; password: [SECRET_1]."
    assert red.counts == {"EMAIL": 3, "SECRET": 1}


def test_extra_patterns_and_known_keys():
    keys.remember("plain-looking-key-value")
    try:
        text = "Order ACME-123456 paid with plain-looking-key-value."
        [msg], red = Redactor([r"ACME-\d{6}"]).messages([{"role": "user", "content": text}])
        assert msg["content"] == "Order [PRIVATE_1] paid with [SECRET_1]."
        assert red.restore(msg["content"]) == text
    finally:
        keys._seen.discard("plain-looking-key-value")


def test_the_cloud_key_itself_is_redacted():
    [msg], _ = Redactor().messages([{"role": "user", "content": f"my key is {CLOUD_KEY}, keep it"}])
    assert "R2LEAKCANARY" not in msg["content"]


def test_reply_placeholders_are_restored_even_without_brackets():
    red = Redaction()
    red.placeholder("EMAIL", "bob@x.io")
    assert red.restore("Write to [EMAIL_1] or EMAIL_1. [EMAIL_9] is unknown.") == (
        "Write to bob@x.io or bob@x.io. [EMAIL_9] is unknown."
    )


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112")


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.sampled_from([v for vs in PRIVATE.values() for v in vs]),
            st.sampled_from(PUBLIC),
            st.text(alphabet=" abcdefXYZ.,:;!?()-[]_0123", max_size=12),
        ),
        max_size=8,
    ),
    cut=st.lists(st.integers(1, 7), min_size=1, max_size=40),
)
def test_fuzz_round_trip_and_nothing_private_leaves(parts, cut):
    text = " ".join(parts)
    [msg], red = Redactor().messages([{"role": "user", "content": text}])
    sent = msg["content"]
    for values in PRIVATE.values():
        for value in values:
            assert value not in sent
    assert red.restore(sent) == text
    # Streamed in arbitrary pieces, the restored stream equals the restored whole.
    out: list[str] = []
    restorer = StreamRestorer(red, out.append)
    i = 0
    for n in cut * (len(sent) // max(1, sum(cut)) + 1):
        if i >= len(sent):
            break
        restorer.feed(sent[i : i + n])
        i += n
    restorer.feed(sent[i:])
    restorer.flush()
    assert "".join(out) == text
