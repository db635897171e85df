-- The answer of every command that committed, by the command's identity: the dramatiq message id, or
-- the client's Idempotency-Key where the API takes one. It is written in the command's own transaction,
-- so a retry after a failure past the commit, a redelivery after a worker crash, or the client's
-- retry with the same key finds it and answers it again instead of doing the work a second time.
CREATE TABLE command_answers (
    command_id   text        PRIMARY KEY,  -- "message:<uuid>" or "key:<user id>:<sha256 of the key>"
    actor        text        NOT NULL,
    request_hash text,                     -- keyed commands: what was asked, so a reused key is refused
    answer       jsonb       NOT NULL,
    answered_at  timestamptz NOT NULL DEFAULT now()
);
-- The relay's housekeeping forgets answers past the retention, oldest first.
CREATE INDEX command_answers_answered_at ON command_answers (answered_at);
