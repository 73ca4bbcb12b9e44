"""Simulators: OCPP charge points with EVs, and a grid operator."""
