"""The service between a policy and equipment: MQTT/OPC UA ingest, twin sync,
gray-scale deployment gated by a trust score, safety envelope, commands with
id/expiry/ack, audit log, and the plant emulator's MQTT front (a later issue)."""
