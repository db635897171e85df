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


def test_a_replicated_topic_keeps_taking_writes_with_one_broker_down_but_never_with_one_copy():
    from shop.streams.topics import topic_config

    spec = TOPICS[0]
    assert topic_config(spec, 1) == dict(spec.config)  # the single broker of the local stack
    assert topic_config(spec, 3)["min.insync.replicas"] == "2"
    assert topic_config(spec, 3)["retention.ms"] == spec.config["retention.ms"]
