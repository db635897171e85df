from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shop.domain.products import (
    CREATED,
    STOCK_ADJUSTED,
    UPDATED,
    Event,
    InvalidProduct,
    Product,
    StockBelowReserved,
    VersionConflict,
    adjust_stock,
    apply,
    create_product,
    patch_product,
)

T0 = datetime(2026, 11, 25, tzinfo=UTC)
PID = uuid.uuid4()
NEW = {"sku": "MUG-1", "name": "Mug", "description": "", "price_cents": 1299, "currency": "EUR", "stock": 10}


def fold(events: list[Event]) -> Product:
    product = None
    for version, event in enumerate(events, start=1):
        product = apply(product, event, PID, version, T0 + timedelta(seconds=version))
    assert product is not None
    return product


def test_the_projection_is_the_fold_of_the_events():
    created = create_product(NEW)
    product = fold([created])
    renamed = patch_product(product, {"name": "Big mug", "price_cents": 1500}, expected_version=1)
    assert renamed is not None
    product = fold([created, renamed])
    restocked = adjust_stock(product, 5)
    product = fold([created, renamed, restocked])
    assert (product.name, product.price_cents, product.stock_available) == ("Big mug", 1500, 15)
    assert product.version == 3
    assert product.created_at == T0 + timedelta(seconds=1)
    assert product.updated_at == T0 + timedelta(seconds=3)
    assert [e.type for e in (created, renamed, restocked)] == [CREATED, UPDATED, STOCK_ADJUSTED]


def test_a_stale_version_is_a_conflict():
    product = fold([create_product(NEW)])
    product = fold([create_product(NEW), Event(UPDATED, {"name": "Other"})])
    with pytest.raises(VersionConflict):
        patch_product(product, {"name": "Mine"}, expected_version=1)


def test_events_must_follow_each_other_without_gaps():
    product = fold([create_product(NEW)])
    with pytest.raises(ValueError, match="version 3 follows 1"):
        apply(product, Event(UPDATED, {"name": "x"}), PID, 3, T0)
    with pytest.raises(ValueError, match="created twice"):
        apply(product, create_product(NEW), PID, 2, T0)
    with pytest.raises(ValueError, match="before ProductCreated"):
        apply(None, Event(UPDATED, {"name": "x"}), PID, 1, T0)


def test_a_patch_that_changes_nothing_makes_no_event():
    product = fold([create_product(NEW)])
    assert patch_product(product, {"name": "Mug"}, expected_version=1) is None


def test_stock_never_goes_below_what_is_reserved():
    product = fold([create_product(NEW)])
    with pytest.raises(StockBelowReserved):
        adjust_stock(product, -11)
    assert adjust_stock(product, -10).data == {"delta": -10}


@pytest.mark.parametrize(
    "change",
    [
        {"sku": ""},
        {"sku": "has space"},
        {"price_cents": -1},
        {"price_cents": 1.5},
        {"price_cents": True},
        {"currency": "eur"},
        {"name": ""},
        {"stock": -1},
        {"colour": "red"},
    ],
)
def test_bad_products_are_refused(change):
    with pytest.raises(InvalidProduct):
        create_product({**NEW, **change})


@pytest.mark.parametrize("changes", [{}, {"sku": "NEW"}, {"stock_available": 5}, {"price_cents": "12"}])
def test_bad_patches_are_refused(changes):
    product = fold([create_product(NEW)])
    with pytest.raises(InvalidProduct):
        patch_product(product, changes, expected_version=1)
