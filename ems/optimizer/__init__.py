"""Pure smart-charging optimizer: site snapshot in, schedule out (LP on HiGHS, with fallbacks)."""
