-- Each order's timers: its payment reminders and its expiry. The due times here are the truth; the
-- delayed RabbitMQ messages are only triggers, and the sweeper fires whatever they failed to.
CREATE TABLE order_timers (
    order_id        uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind            text        NOT NULL CHECK (kind ~ '^(reminder_[1-9][0-9]*|expiry)$'),
    due_at          timestamptz NOT NULL,
    fired_at        timestamptz,
    fired_by        text        CHECK (fired_by IN ('trigger', 'sweeper')),
    outcome         text        CHECK (outcome IN ('reminded', 'cancelled', 'completed', 'skipped')),
    -- Failed sweeps of this timer, and the last error: after a few the sweeper leaves it for a person.
    sweep_failures  integer     NOT NULL DEFAULT 0,
    last_error      text,
    PRIMARY KEY (order_id, kind),
    CHECK ((fired_at IS NULL) = (outcome IS NULL)),
    CHECK ((fired_at IS NULL) = (fired_by IS NULL))
);
-- What the sweeper scans: only timers not fired yet, oldest due first.
CREATE INDEX order_timers_pending ON order_timers (due_at) WHERE fired_at IS NULL;

-- Orders placed before timers existed get their expiry here; no trigger was ever sent for them, so
-- the sweeper fires these once they are overdue.
INSERT INTO order_timers (order_id, kind, due_at)
SELECT id, 'expiry', expires_at FROM orders WHERE status IN ('PENDING', 'PAID');
