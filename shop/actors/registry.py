"""Every actor of the shop, declared on one broker with one process's dependencies."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq

from shop.actors import auth, mail, orders, products, timers
from shop.dependencies import Dependencies


@dataclass(frozen=True)
class Actors:
    auth: auth.AuthActors
    products: products.ProductActors
    orders: orders.OrderActors
    timers: timers.TimerActors
    send_email: dramatiq.Actor[..., None]


def declare_actors(broker: dramatiq.Broker, needs: Dependencies) -> Actors:
    return Actors(
        auth=auth.declare(broker, needs),
        products=products.declare(broker, needs),
        orders=orders.declare(broker, needs),
        timers=timers.declare(broker, needs),
        send_email=mail.declare(broker, needs),
    )
