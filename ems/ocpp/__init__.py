"""OCPP 1.6J and 2.0.1: pure translation (translate.py), handlers (v16.py, v201.py), server (server.py)."""
