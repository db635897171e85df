-- The mail ledger of the emails this context causes (shop/db/mail.py): which were sent, so a
-- redelivered message never mails a second copy, even after Redis was emptied. A delivery holds its
-- row locked for its whole SMTP exchange (the in-flight guard) and commits it with its outcome.
CREATE TABLE mail_deliveries (
    dedupe_key  text        PRIMARY KEY,
    template    text        NOT NULL,
    -- When the SMTP server accepted the email.
    sent_at     timestamptz,
    -- When it was dropped unsent because what it says no longer holds (a reminder for a paid order).
    obsolete_at timestamptz,
    CHECK (sent_at IS NULL OR obsolete_at IS NULL)
);
