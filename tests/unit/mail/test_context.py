"""The context a template is rendered with: a verification code derived from its id, or as given."""

from __future__ import annotations

from uuid import UUID

import pytest

from shop.domain.auth import code_for
from shop.mail.context import ContextResolver

CODE_ID = UUID("0192f0c4-7b1e-7c3a-9d55-3f7e2b8a1c40")


def test_a_code_id_becomes_the_code_derived_with_the_pepper():
    resolved = ContextResolver("pepper-1").resolve(
        "verification_code", {"code_id": str(CODE_ID), "expires_minutes": 10}
    )
    assert resolved == {"code": code_for("pepper-1", CODE_ID), "expires_minutes": 10}
    assert len(resolved["code"]) == 6
    assert resolved["code"].isdigit()


def test_another_pepper_gives_another_code():
    context = {"code_id": str(CODE_ID), "expires_minutes": 10}
    first = ContextResolver("pepper-1").resolve("verification_code", context)
    second = ContextResolver("pepper-2").resolve("verification_code", context)
    assert first["code"] != second["code"]


def test_a_code_carried_by_an_older_message_is_used_as_it_is():
    context = {"code": "428913", "expires_minutes": 15}
    assert ContextResolver("pepper-1").resolve("verification_code", context) == context
    both = {"code": "428913", "code_id": str(CODE_ID), "expires_minutes": 15}
    assert ContextResolver("pepper-1").resolve("verification_code", both)["code"] == "428913"


def test_other_templates_and_contexts_without_a_code_are_left_alone():
    context = {"code_id": str(CODE_ID)}
    assert ContextResolver("p").resolve("order_cancelled", context) is context
    no_code = {"expires_minutes": 10}
    assert ContextResolver("p").resolve("verification_code", no_code) == no_code


@pytest.mark.parametrize("code_id", ["not-a-uuid", "", 42])
def test_a_malformed_code_id_is_an_error_that_never_succeeds(code_id):
    with pytest.raises(ValueError, match="UUID"):
        ContextResolver("p").resolve("verification_code", {"code_id": code_id, "expires_minutes": 10})
