# ruff: noqa: F811  (pytest fixtures imported from broker_fixtures are parameters here)
"""The MQTT transport against a real Mosquitto: credentials, ACL per role, validation on
receipt, persistent sessions across a disconnect and a broker restart, message expiry,
reconnect, last will, TLS, the broker's size limit."""

from __future__ import annotations

import time

import pytest

from edge_bridge import topics
from edge_bridge.broker import Broker, BrokerError
from edge_bridge.mqtt import MqttClient
from edge_bridge.schema import Command, NodeDeath, Telemetry, new_command_id
from tests.edge_bridge.broker_fixtures import (  # noqa: F401
    broker,
    module_broker,
    mqtt_clients,
    wait_until,
)

SITE = "plant-a"
MACHINE = "machining-1"


def sample(seq: int = 0) -> Telemetry:
    return Telemetry(
        MACHINE, seq, 60.0 * seq, time.time(),
        {"temperature": 40.0, "wear": 0.1, "power": 5.0, "state": 3},
        {"speed_factor": 1.0, "standby": False},
    )  # fmt: skip


def command(lifetime_s: float = 60.0, speed: float = 1.05, age_s: float = 0.0) -> Command:
    now = time.time() - age_s
    return Command(
        new_command_id(), f"{MACHINE}:1:ppo-1", 1, MACHINE, "ppo-1", "canary", now,
        now + lifetime_s,
        {"speed_factor": speed, "standby": False, "maintenance": False},
    )  # fmt: skip


def inbox() -> tuple[list, object]:
    received: list = []
    return received, lambda topic, message: received.append(message)


def test_publish_subscribe_with_credentials_and_validation(module_broker, mqtt_clients):
    received, handler = inbox()
    invalid: list = []
    bridge = mqtt_clients(
        module_broker, "bridge", "bridge-v",
        subscribe={topics.filter_for("telemetry", SITE): handler},
        on_invalid=lambda topic, payload, error: invalid.append(error),
    )  # fmt: skip
    equipment = mqtt_clients(module_broker, "equipment", "gw-v")
    topic = topics.telemetry_topic(SITE, MACHINE)
    equipment.publish(topic, sample(1)).wait_for_publish(5)
    equipment.publish_raw(topic, b'{"schema": "twinfactory.telemetry/1", garbled').wait_for_publish(
        5
    )
    equipment.publish_raw(topics.telemetry_topic(SITE, "welding-1"), sample(2).to_payload())
    assert wait_until(lambda: len(received) == 1 and len(invalid) == 2)
    assert received == [sample(1).__class__(**{**vars(sample(1)), "sent_at": received[0].sent_at})]
    assert bridge.rejected == {"telemetry:json": 1, "telemetry:topic": 1}
    assert "topic is for 'welding-1'" in str(invalid[1])
    with pytest.raises(TypeError, match="takes Telemetry"):
        equipment.publish(topic, command())


def test_wrong_password_is_refused(module_broker):
    settings = module_broker.settings("bridge", "intruder", password="not-the-password")
    client = MqttClient(settings)
    with pytest.raises(ConnectionRefusedError, match="Not authorized"):
        client.connect(timeout_s=5)
    assert not client.connected


def test_equipment_cannot_publish_commands(module_broker, mqtt_clients):
    received, handler = inbox()
    mqtt_clients(module_broker, "equipment", "gw-acl",
                 subscribe={topics.filter_for("command", SITE): handler})  # fmt: skip
    rogue = mqtt_clients(module_broker, "equipment", "gw-rogue")
    bridge = mqtt_clients(module_broker, "bridge", "bridge-acl")
    rogue.publish(topics.command_topic(SITE, MACHINE), command(speed=1.2)).wait_for_publish(5)
    assert wait_until(lambda: rogue.publish_refused["Not authorized"] == 1)
    legitimate = command()
    bridge.publish(topics.command_topic(SITE, MACHINE), legitimate).wait_for_publish(5)
    assert wait_until(lambda: len(received) == 1)
    time.sleep(0.2)
    assert received == [legitimate]  # the rogue command never arrived


def test_operator_reads_telemetry_but_cannot_see_commands(module_broker, mqtt_clients):
    received, handler = inbox()
    commands, command_handler = inbox()
    subscribe = {
        topics.filter_for("telemetry", SITE): handler,
        topics.filter_for("command", SITE): command_handler,
    }
    operator = mqtt_clients(module_broker, "operator", "console", subscribe=subscribe)
    equipment = mqtt_clients(module_broker, "equipment", "gw-op")
    bridge = mqtt_clients(module_broker, "bridge", "bridge-op")
    equipment.publish(topics.telemetry_topic(SITE, MACHINE), sample()).wait_for_publish(5)
    bridge.publish(topics.command_topic(SITE, MACHINE), command()).wait_for_publish(5)
    assert wait_until(lambda: len(received) == 1)
    time.sleep(0.3)
    assert commands == []
    # Mosquitto 2.0 grants the subscription and filters by the read rules at delivery
    assert operator.rejected == {}


def test_broker_drops_payloads_over_its_size_limit(module_broker, mqtt_clients):
    sizes: list = []
    mqtt_clients(
        module_broker, "bridge", "bridge-size",
        on_invalid=lambda topic, payload, error: sizes.append(len(payload)),
        subscribe={topics.filter_for("kpi", SITE): lambda t, m: sizes.append(m)},
    )  # fmt: skip
    equipment = mqtt_clients(module_broker, "equipment", "gw-size")
    oversized = b"x" * (module_broker.max_payload_bytes + 100)
    # QoS 0: paho would resend a QoS 1 one after every reconnect, and be dropped every time
    equipment.publish_raw(topics.kpi_topic(SITE), oversized, qos=0)
    equipment.publish_raw(topics.kpi_topic(SITE), b"small but invalid")
    assert wait_until(lambda: len(sizes) == 1)
    time.sleep(0.2)
    assert sizes == [len(b"small but invalid")]  # the oversized one never arrived


def test_tls_connection_with_the_generated_ca(module_broker, mqtt_clients):
    received, handler = inbox()
    assert module_broker.ca_file is not None and module_broker.tls_port is not None
    mqtt_clients(module_broker, "bridge", "bridge-tls", tls=True,
                 subscribe={topics.filter_for("telemetry", SITE): handler})  # fmt: skip
    equipment = mqtt_clients(module_broker, "equipment", "gw-tls", tls=True)
    assert equipment.settings.port == module_broker.tls_port
    equipment.publish(topics.telemetry_topic(SITE, MACHINE), sample(5)).wait_for_publish(5)
    assert wait_until(lambda: [m.seq for m in received] == [5])


def test_last_will_on_a_dead_client_not_on_a_clean_stop(module_broker, mqtt_clients):
    deaths, handler = inbox()
    mqtt_clients(module_broker, "bridge", "bridge-will",
                 subscribe={topics.filter_for("death", SITE): handler})  # fmt: skip
    polite = mqtt_clients(
        module_broker,
        "equipment",
        "gw-polite",
        will=(topics.death_topic(SITE, "gw-polite"), NodeDeath("gw-polite", 1)),
    )
    dying = mqtt_clients(
        module_broker,
        "equipment",
        "gw-dying",
        will=(topics.death_topic(SITE, "gw-dying"), NodeDeath("gw-dying", 4)),
    )
    polite.stop()
    dying.abort()  # the socket closes without DISCONNECT, as when the gateway crashes
    assert wait_until(lambda: len(deaths) == 1)
    time.sleep(0.2)
    assert deaths == [NodeDeath("gw-dying", 4)]


def test_stop_after_a_burst_waits_for_the_acks_and_the_will_is_not_published(
    module_broker, mqtt_clients
):
    # before stop() waited, about one stop in two right after 40 publishes ended in a TCP
    # reset: Mosquitto logged "disconnected due to out of memory" and published the will
    deaths, on_death = inbox()
    samples, on_sample = inbox()
    mqtt_clients(module_broker, "bridge", "bridge-burst",
                 subscribe={topics.filter_for("death", SITE): on_death,
                            topics.filter_for("telemetry", SITE): on_sample})  # fmt: skip
    for trial in range(5):
        node = f"gw-burst-{trial}"
        equipment = mqtt_clients(
            module_broker, "equipment", node, will=(topics.death_topic(SITE, node),
                                                    NodeDeath(node, trial))
        )  # fmt: skip
        for seq in range(40):
            equipment.publish(topics.telemetry_topic(SITE, MACHINE), sample(seq))
        assert equipment.unacknowledged > 0
        equipment.stop()
        assert equipment.unacknowledged == 0
    assert wait_until(lambda: len(samples) == 5 * 40)
    time.sleep(0.3)
    assert deaths == []
    assert "out of memory" not in module_broker.log_tail(400)


def test_stop_does_not_wait_for_acks_while_the_broker_is_down(broker, mqtt_clients):
    equipment = mqtt_clients(broker, "equipment", "gw-down")
    broker.stop()
    assert wait_until(lambda: not equipment.connected)
    equipment.publish(topics.telemetry_topic(SITE, MACHINE), sample())  # queued by paho
    assert equipment.unacknowledged == 1
    assert not equipment.wait_acknowledged(0.1)
    began = time.monotonic()
    equipment.stop(drain_timeout_s=5.0)
    assert time.monotonic() - began < 1.0


def test_queued_command_reaches_a_persistent_session_after_reconnect_and_broker_restart(
    broker, mqtt_clients
):
    received, handler = inbox()
    filters = {topics.filter_for("command", SITE): handler}
    equipment = mqtt_clients(broker, "equipment", "gw-persist", session_expiry_s=300,
                             subscribe=filters)  # fmt: skip
    bridge = mqtt_clients(broker, "bridge", "bridge-persist", session_expiry_s=300)
    equipment.stop()
    first = command()
    bridge.publish(topics.command_topic(SITE, MACHINE), first).wait_for_publish(5)
    equipment = mqtt_clients(broker, "equipment", "gw-persist", session_expiry_s=300,
                             subscribe=filters)  # fmt: skip
    assert equipment.session_present
    assert wait_until(lambda: received == [first])

    equipment.stop()
    second = command(speed=0.95)
    bridge.publish(topics.command_topic(SITE, MACHINE), second).wait_for_publish(5)
    broker.restart()
    equipment = mqtt_clients(broker, "equipment", "gw-persist", session_expiry_s=300,
                             subscribe=filters)  # fmt: skip
    assert equipment.session_present
    assert wait_until(lambda: received == [first, second])
    time.sleep(0.2)
    assert received == [first, second]  # nothing twice


def test_expired_command_is_not_delivered_to_an_offline_session(broker, mqtt_clients):
    received, handler = inbox()
    filters = {topics.filter_for("command", SITE): handler}
    equipment = mqtt_clients(broker, "equipment", "gw-expiry", session_expiry_s=300,
                             subscribe=filters)  # fmt: skip
    bridge = mqtt_clients(broker, "bridge", "bridge-expiry")
    equipment.stop()
    short, long = command(lifetime_s=1.0), command(lifetime_s=60.0, speed=0.9)
    bridge.publish(topics.command_topic(SITE, MACHINE), short).wait_for_publish(5)
    bridge.publish(topics.command_topic(SITE, MACHINE), long).wait_for_publish(5)
    time.sleep(2.0)
    mqtt_clients(broker, "equipment", "gw-expiry", session_expiry_s=300, subscribe=filters)
    assert wait_until(lambda: len(received) >= 1)
    time.sleep(0.2)
    assert received == [long]
    with pytest.raises(ValueError, match="expired"):
        bridge.publish(topics.command_topic(SITE, MACHINE), command(lifetime_s=5.0, age_s=6.0))


def test_client_reconnects_by_itself_after_a_broker_restart(broker, mqtt_clients):
    received, handler = inbox()
    bridge = mqtt_clients(broker, "bridge", "bridge-reconnect",
                          subscribe={topics.filter_for("telemetry", SITE): handler})  # fmt: skip
    equipment = mqtt_clients(broker, "equipment", "gw-reconnect")
    broker.stop()
    assert wait_until(lambda: not bridge.connected and not equipment.connected)
    broker.start()
    assert bridge.wait_connected(10) and equipment.wait_connected(10)
    assert bridge.connects == 2 and equipment.connects == 2
    equipment.publish(topics.telemetry_topic(SITE, MACHINE), sample(9)).wait_for_publish(5)
    assert wait_until(lambda: [m.seq for m in received] == [9])  # subscribed again


def test_missing_mosquitto_is_a_clear_error(tmp_path):
    with pytest.raises(BrokerError, match="make system-deps"):
        Broker(tmp_path, executable=str(tmp_path / "no-mosquitto")).start()
