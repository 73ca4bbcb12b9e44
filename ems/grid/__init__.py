"""Grid-capacity signals: pure policy (capacity.py) and the MQTT adapter (mqtt.py)."""
