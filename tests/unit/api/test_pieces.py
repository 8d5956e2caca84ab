"""Small pure pieces of the API: keys, cursors, chat ids, QR images, input models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.api import auth, errors
from functions.api.logic.messages import chat_id
from functions.api.logic.sessions import decode_cursor, encode_cursor, qr_png
from functions.api.models import MessageCreate, SessionCreate


def test_keys_are_random_prefixed_and_hashed_deterministically() -> None:
    first, second = auth.generate_key(), auth.generate_key()
    assert first != second and first.startswith("wagw_sk_") and len(first) > 40
    assert auth.hash_key(first) == auth.hash_key(first) != auth.hash_key(second)
    assert first not in auth.hash_key(first) and auth.display_prefix(first) == first[:14]


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor((1764000000000, "ses_01abc"))) == (1764000000000, "ses_01abc")
    for bad in ("!!", "bm9jb2xvbg", encode_cursor((1, "x"))[:-3] + "@@"):
        with pytest.raises(errors.InvalidRequest):
            decode_cursor(bad)


def test_phone_numbers_become_chat_ids_and_chat_ids_pass_through() -> None:
    assert chat_id("6281180164100") == "6281180164100@c.us"
    assert chat_id("6281180164100@c.us") == "6281180164100@c.us"
    assert chat_id("120363040000000000@g.us") == "120363040000000000@g.us"


def test_qr_png_is_a_png_that_grows_with_scale() -> None:
    small, large = qr_png("2@abc,def,ghi", scale=2), qr_png("2@abc,def,ghi", scale=10)
    assert small.startswith(b"\x89PNG\r\n\x1a\n") and large.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(small[16:20], "big")
    assert int.from_bytes(large[16:20], "big") == width * 5


@pytest.mark.parametrize("to", ["6281180164100", "6281180164100@c.us", "120363040000000000@g.us"])
def test_message_recipients_accepted(to: str) -> None:
    assert MessageCreate(to=to, text="hi", client_message_id="c-1").to == to


@pytest.mark.parametrize("to", ["+6281180164100", "0812", "abc@c.us", "628118016410012345678"])
def test_message_recipients_refused(to: str) -> None:
    with pytest.raises(ValidationError):
        MessageCreate(to=to, text="hi", client_message_id="c-1")


def test_inputs_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        SessionCreate.model_validate({"name": "x", "workspace_id": "ws_other"})
