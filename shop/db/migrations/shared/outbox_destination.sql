-- The relay serves two buses: Kafka topics (events) and RabbitMQ queues (commands for actors,
-- e.g. "send this email"). For RabbitMQ rows `topic` is the queue and the payload names the actor.
ALTER TABLE outbox
    ADD COLUMN destination text NOT NULL DEFAULT 'kafka' CHECK (destination IN ('kafka', 'rabbitmq'));
