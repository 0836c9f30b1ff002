-- Holds have mails of their own: "hold_placed" to the payer and "hold_incoming" to the payee
-- when one is made, and
-- "hold_released" to the payer when it is voided or expires (a hold posted in part is voided
-- too; its posting transfer's "sent" and "received" tell of it, so that void is not mailed).
ALTER TABLE mail_deliveries DROP CONSTRAINT mail_deliveries_template_check;
ALTER TABLE mail_deliveries ADD CONSTRAINT mail_deliveries_template_check
    CHECK (template IN ('sent', 'received', 'deposited', 'withdrawn', 'failed', 'verify_email',
                        'held', 'hold_placed', 'hold_incoming', 'hold_released'));
