-- API keys may expire (issue 10): NULL means never.
ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ;
