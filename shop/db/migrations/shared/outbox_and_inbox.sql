-- Transactional outbox for Kafka events: a state change and the events it causes are written in
-- one transaction; the relay publishes the rows afterwards and stamps published_at. Nothing is published that was
-- not committed, and nothing committed is lost if a process dies before publishing.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    message_key  text,
    payload      jsonb       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
-- The relay scans only what is still to send, oldest first.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Inbox: every consumer records the events it handled, in the transaction of its work, because
-- every broker here delivers at least once.
CREATE TABLE inbox (
    consumer   text        NOT NULL,
    event_id   uuid        NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Wakes the relay as soon as a transaction that wrote events commits (NOTIFY is delivered at
-- commit, once per transaction and channel); the relay also polls, in case a notification is missed.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
