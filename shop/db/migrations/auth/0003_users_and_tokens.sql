-- Accounts. Emails are stored normalised (trimmed, lower-case); the unique index makes the
-- database, not the application, the last word on "one account per address".
CREATE TABLE users (
    id                uuid        PRIMARY KEY,
    email             text        NOT NULL CHECK (email = lower(email)),
    password_hash     text        NOT NULL,
    roles             text[]      NOT NULL DEFAULT ARRAY['customer'],
    verified_at       timestamptz,
    -- When we last emailed this address a code or a notice: the truth for the resend cooldown.
    last_mail_sent_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- Verification codes, stored as a keyed hash (HMAC with a server-side pepper). A user has at most
-- one live code: issuing a new one supersedes the old.
CREATE TABLE verification_codes (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash     text        NOT NULL,
    issued_at     timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    burnt_at      timestamptz,
    used_at       timestamptz,
    superseded_at timestamptz
);
CREATE UNIQUE INDEX verification_codes_one_live ON verification_codes (user_id)
    WHERE used_at IS NULL AND burnt_at IS NULL AND superseded_at IS NULL;
CREATE INDEX verification_codes_user ON verification_codes (user_id, issued_at DESC);

-- Refresh tokens rotate within a family: each use spends the token and issues the next one.
-- Presenting a spent token means it was stolen (or replayed): the whole family is revoked.
CREATE TABLE refresh_token_families (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX refresh_token_families_user ON refresh_token_families (user_id);

CREATE TABLE refresh_tokens (
    id         uuid        PRIMARY KEY,
    family_id  uuid        NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    -- SHA-256 of the token: the token itself is a 256-bit random secret, so no pepper is needed.
    token_hash bytea       NOT NULL UNIQUE,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
