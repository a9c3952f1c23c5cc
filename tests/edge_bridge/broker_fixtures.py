"""Pytest fixtures with a real Mosquitto broker for the edge bridge's tests.

Import the fixtures into a test module (or a conftest) to use them:

    from tests.edge_bridge.broker_fixtures import broker, module_broker, mqtt_clients  # noqa: F401

- ``module_broker``: one broker per test module (fast; TLS listener too): use it unless the test
  stops or restarts the broker or depends on a clean persistence file.
- ``broker``: a fresh broker per test (no TLS) for restart / persistence tests.
- ``mqtt_clients``: ``make(broker, role, client_id, *, session_expiry_s=0, will=None,
  tls=False, connect=True, on_invalid=None, subscribe=None)`` -> a connected
  ``edge_bridge.mqtt.MqttClient``; every client made is stopped after the test.
  ``subscribe`` = {filter: handler} registered before the connect.

Both brokers have one account per role (``broker.account("equipment")`` etc.) and the ACL of
``edge_bridge.topics.ACL``. ``wait_until(predicate, timeout_s)`` polls for a condition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from edge_bridge.broker import Broker
from edge_bridge.mqtt import MqttClient


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0, step_s: float = 0.01) -> bool:
    """Whether ``predicate()`` becomes true within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("mosquitto"), tls=True) as running:
        yield running


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    with Broker(tmp_path / "mosquitto") as running:
        yield running


@pytest.fixture
def mqtt_clients() -> Iterator[Callable[..., MqttClient]]:
    made: list[MqttClient] = []

    def make(
        target: Broker,
        role: str,
        client_id: str,
        *,
        session_expiry_s: int = 0,
        will=None,
        tls: bool = False,
        connect: bool = True,
        on_invalid=None,
        subscribe=None,
    ) -> MqttClient:
        settings = target.settings(role, client_id, tls=tls, session_expiry_s=session_expiry_s)
        client = MqttClient(settings, will=will, on_invalid=on_invalid)
        for topic_filter, handler in (subscribe or {}).items():
            client.subscribe(topic_filter, handler)
        made.append(client)
        if connect:
            client.connect(timeout_s=10)
        return client

    yield make
    for client in made:
        client.stop()
