"""The names processes pass to each other, declared once: RabbitMQ queues, the actors other
processes send to by name (through an outbox row), Kafka topics, and the exception that marks a
message as one that can never be handled.

No imports: every layer (schemas, handlers, actors, stream agents, the gateway, benchmarks and
tests) may use it without pulling anything else in.
"""

# --- RabbitMQ: dramatiq queues -----------------------------------------------------------------

AUTH_QUEUE = "auth"
PRODUCTS_QUEUE = "products"
ORDERS_QUEUE = "orders"
MAIL_QUEUE = "mail"
TIMER_QUEUE = "timers"  # fed by the delay queues when an order's timer falls due

# --- actors sent to by name, from an outbox row (the others are called through their objects) ----

SEND_EMAIL = "send_email"  # on MAIL_QUEUE
REMINDER_ACTOR = "send_payment_reminder"  # on TIMER_QUEUE
EXPIRY_ACTOR = "expire_order"  # on TIMER_QUEUE

# --- Kafka topics ------------------------------------------------------------------------------

PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"
ORDER_CREATED = "order.created"
ORDER_CANCELLED = "order.cancelled"
ORDER_PAID = "order.paid"
ORDER_COMPLETED = "order.completed"
STOCK_RESERVED = "stock.reserved"
STOCK_REJECTED = "stock.rejected"
DEAD_LETTER_TOPIC = "dead-letter"  # records a stream agent could not handle, kept for a person


class PoisonMessage(Exception):
    """The message can never be handled (does not parse, unknown schema version): dead-letter it."""
