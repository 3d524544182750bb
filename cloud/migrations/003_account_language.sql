-- Notification e-mails go out in the language the customer used to sign up.
ALTER TABLE accounts ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
