from __future__ import annotations

from shop.streams.topics import TOPICS


def test_every_topic_of_the_architecture_is_declared_once_with_partitions():
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    for expected in (
        "product.created",
        "product.updated",
        "order.created",
        "order.cancelled",
        "order.paid",
        "stock.reserved",
        "stock.rejected",
        "dead-letter",
    ):
        assert expected in names
    assert all(t.partitions >= 1 for t in TOPICS)
