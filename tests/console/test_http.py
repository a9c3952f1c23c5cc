"""The console's HTTP API without a browser: every refusal and error path (FastAPI's
TestClient), with a real store, the real live state and, for actions, a real Mosquitto."""

# ruff: noqa: F811
from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from edge_bridge import topics
from edge_bridge.audit import AuditLog, AuditRecord
from edge_bridge.console.app import Console, create_app
from edge_bridge.console.config import ConsoleSettings
from edge_bridge.console.live import LiveState
from edge_bridge.console.server import ConsoleServer
from edge_bridge.schema import BridgeState, BridgeStatus, Telemetry, TwinReport
from edge_bridge.store import Store
from tests.console.conftest import PASSWORDS
from tests.edge_bridge.broker_fixtures import module_broker, mqtt_clients, wait_until  # noqa: F401

SITE = "plant-c"


def make_store(path) -> None:
    with Store(path) as store:
        log = AuditLog(store)
        for index in range(3):
            log.record(
                AuditRecord(
                    time_s=300.0 * (index + 1),
                    decision_index=index,
                    machine="machining-1",
                    stage="shadow",
                    assignment="incumbent",
                    applied={"speed_factor": 1.0, "standby": False, "maintenance": False},
                    trust=0.8,
                    reason="incumbent, 'quoted', commas",
                    command_id=f"c{index}",
                    ack_status="confirmed",
                )
            )
        log.event("promotion", "healthy for 2 intervals", time_s=600.0, decision_index=1)
        log.event("line_kpi", "not on the timeline")
        store.save_gate_state("r1", {"stage": "shadow", "kpi_window": [[1.0, 1.1]]}, 1.0)


def feed(live: LiveState) -> None:
    now = time.time()
    signals = {"temperature": 40.0, "wear": 0.1, "power": 5.0, "vibration": 1.0, "state": 3}
    live.receive(
        "t",
        Telemetry("machining-1", 0, 60.0, now, signals, {"speed_factor": 1.0, "standby": False}),
    )
    live.receive("t", BridgeState(online=True, since=now))
    live.receive("t", BridgeStatus("shadow", "p1", now, (), {"machining-1": 0.8}))
    measured = {"temperature": 40.0, "wear": 0.1, "power": 5.0}
    live.receive(
        "t", TwinReport("machining-1", 0, 300.0, "shadow", "incumbent", measured, measured, 0.8)
    )


@pytest.fixture
def setup(tmp_path, users):
    store = tmp_path / "bridge.sqlite"
    make_store(store)
    runs = tmp_path / "runs"
    (runs / "opt").mkdir(parents=True)
    (runs / "opt" / "pareto.json").write_text(
        json.dumps(
            {
                "objectives": ["cost", "energy"],
                "chosen": 0,
                "points": [
                    {
                        "evaluation": 3,
                        "F": {"cost": 1.0, "energy": float("nan")},
                        "x": {"speed": 1.1},
                    }
                ],
            }
        )
    )
    (runs / "broken.json").write_text("{not json")
    (runs / "table.csv").write_text("step,reward\n1,2.5\n2,3.5\n")
    settings = ConsoleSettings(
        site=SITE,
        store=str(store),
        runs=str(runs),
        refusal_log=str(tmp_path / "refused.jsonl"),
        gate="configs/bridge/gate.toml",
    )
    live = LiveState(SITE, twin_stale_s=60)
    feed(live)
    console = Console(settings, live, users)
    return console, TestClient(create_app(console))


def login(client: TestClient, name: str) -> str:
    answer = client.post("/api/login", json={"user": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    return answer.json()["csrf"]


def action(client, csrf, **body):
    body.setdefault("nonce", f"n{time.monotonic_ns()}x{id(body)}")
    return client.post("/api/action", json=body, headers={"X-CSRF-Token": csrf} if csrf else {})


def test_without_a_session_pages_redirect_reads_answer_401_and_actions_are_refused_and_logged(
    setup,
):
    console, client = setup
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/login").status_code == 200
    assert client.get("/static/console.js").status_code == 200
    for path in ("/api/overview", "/api/rollout", "/api/audit", "/api/runs", "/api/stream"):
        assert client.get(path).status_code == 401, path
    refused = client.post("/api/action", json={"action": "rollback", "nonce": "a" * 20})
    assert refused.status_code == 403 and "not signed in" in refused.json()["detail"]
    bad = client.post("/api/login", json={"user": "alice", "password": "guess"})
    assert bad.status_code == 401
    assert client.post("/api/login", content=b"user=alice").status_code == 400
    reasons = [e["reason"] for e in console.refusals.entries()]
    assert any("not signed in" in r for r in reasons) and any("password" in r for r in reasons)
    assert all(e["kind"] == "console_refused" for e in console.refusals.entries())


def test_a_viewer_reads_but_cannot_act_and_the_refusal_is_logged(setup):
    console, client = setup
    csrf = login(client, "victor")
    overview = client.get("/api/overview").json()
    assert [m["name"] for m in overview["machines"]] == ["machining-1"]
    assert overview["commands"]["machining-1"]["ack_status"] == "confirmed"
    assert overview["health"]["bridge"] == "online"
    answer = action(client, csrf, action="approve")
    assert answer.status_code == 403 and "viewer" in answer.json()["detail"]
    assert console.refusals.entries()[-1]["user"] == "victor"


def test_missing_stale_or_wrong_csrf_tokens_and_replayed_nonces_are_refused(setup):
    console, client = setup
    old = login(client, "alice")
    client.post("/api/logout")
    fresh = login(client, "alice")
    assert old != fresh
    assert action(client, None, action="approve").status_code == 403
    assert action(client, old, action="approve").status_code == 403  # stale: an ended session
    assert action(client, "forged", action="approve").status_code == 403
    # not connected to a broker: the command cannot go out, said so (503), nonce still spent
    first = action(client, fresh, action="approve", nonce="b" * 20)
    assert first.status_code == 503 and "not connected" in first.json()["detail"]
    again = action(client, fresh, action="approve", nonce="b" * 20)
    assert again.status_code == 409 and "replay" in again.json()["detail"]
    assert len(console.refusals.entries()) == 4


def test_malformed_actions_and_query_parameters_get_a_4xx_with_a_message(setup):
    _, client = setup
    csrf = login(client, "alice")
    cases = [
        ({"action": "delete_everything"}, "action"),
        ({"action": "approve", "nonce": "short"}, "nonce"),
        ({"action": "local_control"}, "needs a machine"),
        ({"action": "rollback", "cohort": "nope"}, "cohort"),
        ({"action": "local_control", "machine": "bad/name"}, "machine"),
    ]
    for body, message in cases:
        answer = action(client, csrf, **body)
        assert answer.status_code == 400 and message in answer.json()["detail"], body
    not_json = client.post("/api/action", content=b"[", headers={"X-CSRF-Token": csrf})
    assert not_json.status_code == 400
    for query, message in [
        ("since=abc", "must be a number"),
        ("since=nan", "finite"),
        ("since=900&until=300", "after until"),
        ("machine=bad%20name", "machine"),
    ]:
        answer = client.get(f"/api/audit?{query}")
        assert answer.status_code == 400 and message in answer.json()["detail"], query
    assert client.get("/api/audit?limit=0").status_code == 422
    assert client.get("/api/audit?limit=x").status_code == 422
    assert client.get("/api/machine/welding-9").status_code == 404
    assert client.get("/api/machine/bad%20name").status_code == 400
    assert client.get("/api/runs/file?path=../bridge.sqlite").status_code == 400
    assert client.get("/api/runs/file?path=/etc/passwd").status_code == 400
    assert client.get("/api/runs/file").status_code == 422
    assert client.get("/api/runs/raw?path=table.csv").status_code == 404


def test_reads_audit_csv_rollout_machine_and_runs(setup):
    _, client = setup
    login(client, "victor")
    rows = client.get("/api/audit?machine=machining-1&since=400&reason=quoted").json()["rows"]
    assert [r["decision_index"] for r in rows] == [1, 2]
    csv = client.get("/api/audit.csv?until=400")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("time_s,decision_index") and len(lines) == 2
    assert "\"incumbent, 'quoted', commas\"" in lines[1]
    rollout = client.get("/api/rollout").json()
    assert [e["kind"] for e in rollout["timeline"]] == ["promotion"]
    assert rollout["gate"]["kpi_series"] == [{"candidate_z": 1.0, "incumbent_z": 1.1}]
    assert rollout["cohorts"] == ["mill-early", "mills", "rest"]
    detail = client.get("/api/machine/machining-1").json()
    assert len(detail["trace"]) == 1 and len(detail["reports"]) == 1 and len(detail["audit"]) == 3
    files = {f["path"]: f["kind"] for f in client.get("/api/runs").json()["files"]}
    assert files == {"opt/pareto.json": "pareto", "broken.json": "json", "table.csv": "table"}
    pareto = client.get("/api/runs/file?path=opt/pareto.json").json()
    assert pareto["data"]["points"][0]["x"] == {"speed": 1.1}
    assert pareto["data"]["points"][0]["F"]["energy"] is None  # NaN is not JSON
    broken = client.get("/api/runs/file?path=broken.json").json()
    assert broken["kind"] == "error" and "cannot be shown" in broken["message"]
    assert client.get("/api/runs/file?path=missing.json").json()["kind"] == "error"
    table = client.get("/api/runs/file?path=table.csv").json()["data"]
    assert table["numeric"] == ["step", "reward"] and len(table["rows"]) == 2


def test_a_missing_store_is_a_503_with_the_reason_and_the_overview_still_renders(setup, tmp_path):
    console, client = setup
    console.reader.path = tmp_path / "nowhere.sqlite"
    console.reader.reset()
    login(client, "victor")
    answer = client.get("/api/rollout")
    assert answer.status_code == 503 and "no such store file" in answer.json()["detail"]
    assert client.get("/api/overview").status_code == 200


def test_health_says_when_nothing_is_live():
    now = [1000.0]
    live = LiveState(SITE, twin_stale_s=30, clock=lambda: now[0])
    health = live.health()
    assert not health["live"] and not health["mqtt"] and health["bridge"] == "unknown"
    live.receive("t", BridgeState(online=False, since=now[0]))
    assert any("offline" in p for p in live.health()["problems"])
    measured = {"temperature": 1.0, "wear": 0.1, "power": 1.0}
    for k in range(3):  # report batches every 10 s: stale after 2 x 10 s
        now[0] += 10
        live.receive(
            "t", TwinReport("m-1", k, 300.0 * k, "shadow", "incumbent", measured, measured)
        )
    now[0] += 15
    assert not live.health()["twin_stale"]
    now[0] += 10
    assert live.health()["twin_stale"] and live.health()["twin_stale_after_s"] == 20
    signals = {"temperature": 1.0, "wear": 0.1, "power": 1.0, "vibration": None, "state": 3}
    setpoints = {"speed_factor": 1.0, "standby": False}
    live.receive("t", Telemetry("m-1", 0, 60.0, now[0] - 1, signals, setpoints))
    assert live.health()["telemetry_delay_s"] == 1 and not any(
        "arrives" in p for p in live.health()["problems"]
    )
    live.receive("t", Telemetry("m-1", 1, 61.0, now[0] - 30, signals, setpoints))  # a backlog
    assert any("arrives 30 s after" in p for p in live.health()["problems"])


def test_an_operator_action_reaches_the_broker_as_an_operator_command(
    tmp_path, users, module_broker, mqtt_clients
):
    received = []
    mqtt_clients(
        module_broker,
        "bridge",
        "bridge-http-test",
        subscribe={topics.filter_for("operator", SITE): lambda t, m: received.append(m)},
    )
    settings = ConsoleSettings(
        site=SITE,
        store=str(tmp_path / "none.sqlite"),
        refusal_log=str(tmp_path / "r.jsonl"),
        port=0,
        mqtt_host=module_broker.host,
        mqtt_port=module_broker.port,
        mqtt_username=module_broker.account("operator").username,
    )
    server = ConsoleServer(settings, users=users, client_id="console-http-test")
    server.mqtt_settings = lambda: module_broker.settings("operator", "console-http-test")
    with server, TestClient(server.app) as client:
        assert wait_until(lambda: server.live.client is not None and server.live.client.connected)
        csrf = login(client, "alice")
        answer = action(
            client, csrf, action="rollback", cohort=None, nonce="c" * 24, reason="smoke"
        )
        assert answer.status_code == 200, answer.text
        assert wait_until(lambda: len(received) == 1)
        command = received[0]
        assert (command.action, command.operator, command.request_id) == (
            "rollback",
            "alice",
            "c" * 24,
        )
        assert command.machine is None
