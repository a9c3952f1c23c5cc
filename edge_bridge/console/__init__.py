"""The operator console: a small FastAPI web application over the bridge's MQTT topics and its
SQLite store (issue 15). ``scripts/console.py`` starts it; see the README's "Operator console"."""
