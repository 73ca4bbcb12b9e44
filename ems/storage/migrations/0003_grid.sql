-- Grid capacity signals: keep what a rejected signal actually said (cut to 4 KiB), so an
-- operator can see why it failed without the sender's logs. Accepted signals are fully
-- described by their parsed blocks and keep NULL here.

ALTER TABLE capacity_signals ADD COLUMN payload TEXT;
