"""The message record's Redis hash and the send command the API builds for it."""

from __future__ import annotations

from shared.commands import SendTextCommand
from shared.store.messages import MessageRecord, MessageStatus, queue_message_call


def full_record() -> MessageRecord:
    return MessageRecord(
        id="msg_01kabc",
        workspace_id="ws_1",
        session_id="ses_1",
        to="6281180164100@c.us",
        text="héllo",
        client_message_id="c-1",
        status=MessageStatus.DELIVERED,
        wa_message_id="true_6281180164100@c.us_ABC",
        error="none",
        created_at_ms=1_764_282_000_123,
        updated_at_ms=1_764_282_000_456,
    )


def test_the_hash_holds_every_set_field_in_its_json_form() -> None:
    # Given a record with every field set, and one with the optional ones left out
    for record in (full_record(), full_record().model_copy(update={"wa_message_id": None, "error": None})):
        # When it becomes a Redis hash
        fields = record.to_hash()
        # Then it is the record's JSON form as strings, without the unset fields, and it reads back the same
        expected = {k: str(v) for k, v in record.model_dump(mode="json").items() if v is not None}
        assert fields == expected
        assert MessageRecord.model_validate(fields) == record


def test_the_send_call_carries_the_hash_and_a_command_derived_from_the_message() -> None:
    # Given a queued message
    record = full_record().model_copy(update={"status": MessageStatus.QUEUED})
    # When the API builds its send call
    _keys, args = queue_message_call(record, queue_max=200, ms_per_send=1500, refused_statuses=["logged_out", "failed"])
    # Then the record's fields follow as pairs, and the command names the message and carries its text
    pairs = args[9:]
    assert dict(zip(pairs[::2], pairs[1::2], strict=True)) == record.to_hash()
    command = SendTextCommand.model_validate_json(str(args[4]))
    assert command.command_id == "cmd_01kabc"
    assert (command.message_id, command.to, command.text) == (record.id, record.to, record.text)
    assert int(command.issued_at.timestamp() * 1000) == record.created_at_ms
    assert args[7] == "logged_out failed"
