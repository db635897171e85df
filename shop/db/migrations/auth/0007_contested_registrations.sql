-- An unverified address registered again with another password: whoever verifies it must then say
-- which password the account gets, or an attacker who registered the address (before or after its
-- owner) would hold a working password for the account the owner verifies.
ALTER TABLE users ADD COLUMN contested_at timestamptz;

-- Verification codes are derived from their record's id (shop.domain.auth.code_for) and no longer
-- travel in the email command: the codes of emails sent already are taken out of the outbox rows.
UPDATE outbox
   SET payload = jsonb_set(payload, '{kwargs,context}', (payload #> '{kwargs,context}') - 'code')
 WHERE destination = 'rabbitmq'
   AND published_at IS NOT NULL
   AND payload #>> '{kwargs,template}' = 'verification_code'
   AND payload #> '{kwargs,context}' ? 'code';
