-- When a delivery was about to send the final "." of its message: committed before that point of no
-- return. A delivery killed between it and the record of the server's acceptance (the server may
-- hold the message already) leaves this set without sent_at; its redelivery takes the email as sent
-- rather than mail a second copy. A server that answers the "." with an error clears it.
ALTER TABLE mail_deliveries ADD COLUMN handed_over_at timestamptz;
