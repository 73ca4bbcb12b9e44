"""Billing: pure pricing (tariffs, session cost, receipts) and ledger rules."""
