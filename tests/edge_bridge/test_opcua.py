"""The OPC UA adapter against a real asyncua equipment server on loopback."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from asyncua import ua

from edge_bridge.opcua import (
    BackgroundLoop,
    OpcUaAdapter,
    OpcUaAuthError,
    OpcUaConnectionError,
    RetryPolicy,
    SyncOpcUaAdapter,
    UnknownMachineError,
)
from edge_bridge.opcua_server import Credentials, EquipmentServer
from envs.plant import Plant, load_plant_config

USER = Credentials("bridge", "s3cret-bridge")


@pytest.fixture(scope="module")
def loop():
    background = BackgroundLoop()
    yield background
    background.close()


@pytest.fixture(scope="module")
def plant():
    with Plant(load_plant_config("configs/plant_example.toml")) as emulated:
        emulated.reset()
        yield emulated


@pytest.fixture(scope="module")
def server(loop, plant):
    """The plant's machines on OPC UA, username/password only (no anonymous access)."""
    equipment = EquipmentServer.from_plant(plant, credentials=USER)
    loop.run(equipment.start())
    yield equipment
    loop.run(equipment.stop())


def run(coroutine):
    return asyncio.run(coroutine)


async def _with_adapter(url, action, **options):
    async with OpcUaAdapter(url, credentials=USER, **options) as adapter:
        return await action(adapter)


def test_setpoints_land_with_their_variant_types_and_read_back(loop, server):
    setpoints = {"speed_factor": 1.15, "standby": True, "maintenance": True}
    with SyncOpcUaAdapter(server.url, credentials=USER) as adapter:
        result = adapter.write_setpoints("machining-2", setpoints, version="policy-7")
        assert adapter.machines() == sorted(server.machines)
    assert result.confirmed, result
    assert result.readback == {**setpoints, "version": "policy-7"}
    assert {r.code for r in result.tags.values()} == {"Good"}
    assert loop.run(server.setpoints("machining-2")) == {**setpoints, "version": "policy-7"}
    numpy_values = {"speed_factor": np.float64(0.95), "standby": np.bool_(False)}
    with SyncOpcUaAdapter(server.url, credentials=USER) as adapter:
        assert adapter.write_setpoints("machining-2", numpy_values).confirmed

    async def stored_types():
        nodes = server._machine_nodes("machining-2")
        return {
            tag: (await nodes[tag].read_data_value()).Value.VariantType
            for tag in ("speed_factor", "standby", "maintenance", "version")
        }

    assert loop.run(stored_types()) == {
        "speed_factor": ua.VariantType.Double,
        "standby": ua.VariantType.Boolean,
        "maintenance": ua.VariantType.Boolean,
        "version": ua.VariantType.String,
    }


@pytest.mark.parametrize("speed", [1.31, 0.69, math.nan, math.inf])
def test_out_of_range_speed_is_rejected_by_the_server_and_changes_nothing(loop, server, speed):
    before = loop.run(server.setpoints("machining-3"))
    result = run(
        _with_adapter(
            server.url,
            lambda a: a.write_setpoints("machining-3", {"speed_factor": speed, "standby": True}),
        )
    )
    tag = result.tags["speed_factor"]
    assert (tag.outcome, tag.code) == ("rejected", "BadOutOfRange")
    assert "range" in tag.description.lower()
    assert result.rejected == {"speed_factor": "BadOutOfRange"}
    assert not result.confirmed
    assert result.tags["standby"].outcome == "ok"  # per-node status: the valid tag landed
    after = loop.run(server.setpoints("machining-3"))
    assert after["speed_factor"] == before["speed_factor"] == tag.readback


def test_wrong_variant_types_and_read_only_tags_are_refused(loop, server):
    before = loop.run(server.setpoints("welding-1"))
    variants = {
        "speed_factor": ua.Variant(1.0, ua.VariantType.Float),
        "standby": ua.Variant(1, ua.VariantType.Int32),
        "temperature": ua.Variant(20.0, ua.VariantType.Double),
    }
    result = run(_with_adapter(server.url, lambda a: a.write_variants("welding-1", variants)))
    assert result.rejected == {
        "speed_factor": "BadTypeMismatch",
        "standby": "BadTypeMismatch",
        "temperature": "BadUserAccessDenied",
    }
    assert loop.run(server.setpoints("welding-1")) == before


def test_bad_input_raises_before_anything_is_sent(server):
    async def attempts(adapter):
        errors = []
        for setpoints in ({"speed": 1.0}, {"standby": 1}, {"speed_factor": True}, {}):
            with pytest.raises(ValueError) as caught:
                await adapter.write_setpoints("welding-2", setpoints)
            errors.append(str(caught.value))
        with pytest.raises(UnknownMachineError) as unknown:
            await adapter.write_setpoints("milling-9", {"speed_factor": 1.0})
        with pytest.raises(UnknownMachineError):
            await adapter.read_measurements("milling-9")
        return errors, str(unknown.value)

    errors, unknown = run(_with_adapter(server.url, attempts))
    assert "unknown setpoint tag 'speed'" in errors[0]
    assert "must be a bool" in errors[1] and "must be a number" in errors[2]
    assert "milling-9" in unknown and "machining-1" in unknown


def test_identity_is_checked(server):
    quick = RetryPolicy(attempts=1)
    with pytest.raises(OpcUaAuthError, match="anonymous"):
        run(OpcUaAdapter(server.url, retry=quick).connect())
    wrong = Credentials("bridge", "wrong")
    with pytest.raises(OpcUaAuthError, match="bridge"):
        run(OpcUaAdapter(server.url, credentials=wrong, retry=quick).connect())


def test_adapter_reconnects_after_the_server_restarts(loop, server):
    """The endpoint goes down (every connection closed) and comes back on the same port."""

    async def on_server(coroutine):
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop.loop))

    async def scenario():
        adapter = OpcUaAdapter(
            server.url, credentials=USER, retry=RetryPolicy(attempts=20, first_delay_s=0.05)
        )
        first = await adapter.write_setpoints("inspection-1", {"speed_factor": 1.2})
        await on_server(server.stop_listening())
        try:
            impatient = OpcUaAdapter(
                server.url, credentials=USER, retry=RetryPolicy(attempts=2, first_delay_s=0.01)
            )
            with pytest.raises(OpcUaConnectionError, match="in 2 attempts"):
                await impatient.read_measurements("inspection-1")
            assert not adapter.connected
        finally:
            await on_server(server.listen())
        try:
            second = await adapter.write_setpoints("inspection-1", {"speed_factor": 0.9})
            measurements = await adapter.read_measurements("inspection-1")
        finally:
            await adapter.close()
        return first, second, measurements, adapter.reconnects

    first, second, measurements, reconnects = run(scenario())
    assert first.confirmed and second.confirmed and second.readback == {"speed_factor": 0.9}
    assert reconnects == 1
    assert "vibration" not in measurements and isinstance(measurements["state"], int)


def test_plant_driven_server_applies_setpoints_and_publishes_moving_measurements(
    loop, server, plant
):
    with SyncOpcUaAdapter(server.url, credentials=USER) as adapter:
        result = adapter.write_setpoints(
            "machining-1", {"speed_factor": 1.2, "standby": False, "maintenance": True}
        )
        assert result.confirmed
        applied = loop.run(server.apply_to(plant))
        assert applied["machining-1"]["speed_factor"] == 1.2
        assert applied["machining-1"]["maintenance"] is True
        assert adapter.read_setpoints("machining-1")["maintenance"] is False  # consumed
        seen = []
        for _ in range(3):
            loop.run(server.step(plant))
            seen.append(adapter.read_measurements("machining-1"))
    times = [sample["time_s"] for sample in seen]
    assert times == sorted(times) and times[0] < times[-1]
    assert times[-1] == pytest.approx(plant.elapsed_s)
    for kind in ("temperature", "power", "vibration", "wear"):
        values = [sample[kind] for sample in seen if not math.isnan(sample[kind])]
        assert len(set(values)) > 1, (kind, values)
    assert all(isinstance(sample["state"], int) for sample in seen)
    last = plant.measure()
    assert seen[-1]["state"] == int(last["machining-1.state"])


def test_a_dropped_sample_reads_nan(loop, server, plant):
    sample = plant.measure()
    sample["welding-2.temperature"] = math.nan
    loop.run(server.publish(sample))
    with SyncOpcUaAdapter(server.url, credentials=USER) as adapter:
        values = adapter.read_measurements("welding-2")
    assert math.isnan(values["temperature"])
    assert values["power"] == pytest.approx(sample["welding-2.power"])
