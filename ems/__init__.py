"""ems: smart-charging and energy-management system for EV charging sites."""

__version__ = "0.1.0"
