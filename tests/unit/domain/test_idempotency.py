from __future__ import annotations

import uuid

import pytest

from shop.domain.idempotency import (
    InvalidIdempotencyKey,
    check_idempotency_key,
    key_digest,
    request_fingerprint,
)

A = uuid.uuid4()


def test_request_fingerprint_ignores_key_order_and_spacing_but_not_content():
    one = {"items": [{"product_id": str(A), "quantity": 1}]}
    same = {"items": [{"quantity": 1, "product_id": str(A)}]}
    other = {"items": [{"product_id": str(A), "quantity": 2}]}
    assert request_fingerprint(one) == request_fingerprint(same)
    assert request_fingerprint(one) != request_fingerprint(other)


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "ünï", None])
def test_bad_idempotency_keys(key):
    with pytest.raises(InvalidIdempotencyKey):
        check_idempotency_key(key)


@pytest.mark.parametrize("key", ["a", "x" * 255, "order-2026-11-25#1", "!~"])
def test_good_idempotency_keys(key):
    assert check_idempotency_key(key) == key


def test_a_key_is_stored_as_a_digest_of_fixed_size():
    assert len(key_digest("a")) == len(key_digest("x" * 255)) == 64
    assert key_digest("a") != key_digest("b")
