"""The mail command: the message every producer of an email queues for `send_email`, and what the
mail actor reads back from it."""

from __future__ import annotations

import json
import uuid

from shop.handlers.mail import SendEmail
from shop.mail.origins import ORDERS, origin_of
from shop.schemas.mail import MailCommand, encode_send_email


def test_an_email_is_a_send_email_message_on_the_mail_queue_with_its_four_fields():
    code_id = uuid.uuid4()
    context = {"code_id": str(code_id), "expires_minutes": 15}
    assert encode_send_email(
        "verification_code", "ada@example.test", context, f"verification-code:{code_id}"
    ) == MailCommand(
        "mail",
        "send_email",
        {
            "template": "verification_code",
            "to": "ada@example.test",
            "context": {"code_id": str(code_id), "expires_minutes": 15},
            "dedupe_key": f"verification-code:{code_id}",
        },
    )


def test_the_origin_is_sent_only_when_the_producer_names_it():
    unnamed = encode_send_email("order_completed", "ada@example.test", {}, "order-completed:1")
    named = encode_send_email("order_completed", "ada@example.test", {}, "order-completed:1", ORDERS)
    assert "origin" not in unnamed.kwargs
    assert named.kwargs == unnamed.kwargs | {"origin": "orders"}


def test_the_mail_actor_reads_every_field_back_after_the_outbox_json():
    order_id = uuid.uuid4()
    mail = encode_send_email(
        "order_cancelled",
        "ada@example.test",
        {"order_id": str(order_id), "reason": "out_of_stock"},
        f"order-cancelled:{order_id}",
        ORDERS,
    )
    received = SendEmail(**json.loads(json.dumps(mail.kwargs)))
    assert received == SendEmail(
        "order_cancelled",
        "ada@example.test",
        {"order_id": str(order_id), "reason": "out_of_stock"},
        f"order-cancelled:{order_id}",
        "orders",
    )
    assert origin_of(received.template, received.origin) == "orders"


def test_the_message_keeps_its_own_copy_of_the_context():
    context = {"order_id": "1"}
    mail = encode_send_email("order_completed", "ada@example.test", context, "order-completed:1")
    context["order_id"] = "2"
    assert mail.kwargs["context"] == {"order_id": "1"}
