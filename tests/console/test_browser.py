"""The console in a real headless Chromium against LocalDeployment (real Mosquitto, the bridge
service, the plant emulator in lock-step): the overview renders every machine and updates; an
operator approves a promotion (the gate and the audit log show it); a viewer cannot act; a
rollback from the UI reaches the machines; the page survives a bridge restart."""

from __future__ import annotations

import pytest

from tests.console import browser

if not browser.available():  # pragma: no cover - make system-deps installs them
    pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from edge_bridge.console.server import ConsoleServer, deployment_console_settings
from edge_bridge.deployment import LocalDeployment
from edge_bridge.settings import BridgeSettings
from tests.console.conftest import PASSWORDS
from tests.edge_bridge.broker_fixtures import wait_until

pytestmark = pytest.mark.browser

GATE = """
rollout_id = "console-test"
min_intervals = 2
trust_threshold = 0.5
kpi_tolerance = 0.05
rollback_kpi_tolerance = 0.5
kpi_min_intervals = 2
require_approval = true
start_h = 6.0

[[cohorts]]
name = "mill-1"
machines = ["machining-1"]

[[cohorts]]
name = "rest"
"""
MACHINES = 7


@pytest.fixture(scope="module")
def plant(tmp_path_factory, users):
    folder = tmp_path_factory.mktemp("console")
    gate = folder / "gate.toml"
    gate.write_text(GATE)
    settings = BridgeSettings(gate=str(gate), candidate="condition_based", interval_wait_s=2.0)
    deployment = LocalDeployment(folder / "local", settings, keep_plant_drift=False)
    with deployment:
        console = ConsoleServer(
            deployment_console_settings(deployment, folder / "console", push_interval_s=0.1),
            users=users,
        )
        with console:
            yield deployment, console


@pytest.fixture(scope="module")
def driver():
    chromium = browser.chromium()
    yield chromium
    chromium.quit()


def wait(driver, condition, timeout_s: float = 10.0):
    """Wait for ``condition``; an element the live page re-rendered meanwhile is looked up again
    at the next poll (StaleElementReferenceException), not an error."""
    return WebDriverWait(
        driver, timeout_s, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def run(deployment: LocalDeployment, intervals: int) -> None:
    deployment.run(intervals)
    assert deployment.settle(10.0)


def seq(driver, machine: str) -> str | None:
    return driver.execute_script(
        f"const r = document.querySelector('tr[data-machine=\"{machine}\"]');"
        "return r ? r.dataset.seq || null : null;"
    )


def confirm(driver, button_id: str) -> None:
    wait(driver, lambda d: d.find_elements(By.ID, button_id))
    wait(driver, lambda d: d.find_element(By.ID, button_id).click() or True)  # retried if stale
    wait(driver, lambda d: d.switch_to.alert).accept()
    wait(driver, lambda d: "sent" in d.find_element(By.ID, "flash").text)


def test_the_overview_renders_every_machine_and_live_values_update(plant, driver):
    deployment, console = plant
    run(deployment, 2)
    browser.sign_in(driver, console.url, "alice", PASSWORDS["alice"])
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr[data-machine]")) == MACHINES)
    stations = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "tr.station")]
    assert stations == ["inspection (1)", "machining (4)", "welding (2)"]
    before = seq(driver, "machining-1")
    run(deployment, 1)
    wait(driver, lambda d: seq(d, "machining-1") not in (None, before))
    driver.find_element(By.ID, "filter").send_keys("welding")
    rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-machine]")
    assert sorted(r.get_attribute("data-machine") for r in rows) == ["welding-1", "welding-2"]
    assert "LIVE" in driver.find_element(By.ID, "health").text


def test_a_viewer_sees_the_rollout_but_cannot_act(plant, driver):
    deployment, console = plant
    browser.sign_in(driver, console.url, "victor", PASSWORDS["victor"])
    driver.get(console.url + "/rollout")
    button = wait(driver, lambda d: d.find_elements(By.ID, "rollback-all"))[0]
    assert not button.is_enabled()
    status = driver.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/session').then(r => r.json()).then(s => fetch('/api/action', {method: 'POST',"
        " headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf},"
        " body: JSON.stringify({action: 'rollback', nonce: 'v'.repeat(20)})}))"
        ".then(r => done(r.status));"
    )
    assert status == 403
    assert console.console.refusals.entries()[-1]["user"] == "victor"
    assert deployment.bridge.loop.gate.stage != "rolled_back"


def test_an_operator_approves_a_promotion_and_the_gate_and_audit_log_show_it(plant, driver):
    deployment, console = plant
    gate = deployment.bridge.loop.gate
    for _ in range(20):
        if gate.pending_approvals():
            break
        run(deployment, 1)
    assert gate.pending_approvals() and gate.stage_label == "shadow"
    browser.sign_in(driver, console.url, "alice", PASSWORDS["alice"])
    driver.get(console.url + "/rollout")
    wait(driver, lambda d: "canary[0]" in d.find_element(By.ID, "pending-text").text)
    confirm(driver, "approve")
    assert wait_until(lambda: gate.stage_label == "canary[0]", 5)
    audit = deployment.bridge.audit
    assert wait_until(lambda: audit.events(kind="operator"), 5)  # written after the gate acts
    events = audit.events(kind="operator")
    assert [e.operator for e in events] == ["alice"] and "approve" in events[0].reason
    promotion = audit.events(kind="promotion")[-1]  # the gate's event, with who approved it
    assert promotion.operator == "alice"
    wait(driver, lambda d: d.find_element(By.ID, "stage-label").text == "canary[0]")
    wait(driver, lambda d: "approve by alice" in d.find_element(By.ID, "timeline").text)


def test_a_rollback_from_the_ui_reaches_the_machines(plant, driver):
    deployment, console = plant
    bridge = deployment.bridge
    run(deployment, 1)
    assert "candidate" in bridge.loop.gate.assignments(0.0).values()
    driver.get(console.url + "/rollout")
    confirm(driver, "rollback-all")
    assert wait_until(lambda: bridge.loop.gate.stage == "rolled_back", 5)
    run(deployment, 1)
    last = bridge.decisions[-1]
    assert set(last.assignments.values()) == {"incumbent"}
    rows = [r for r in bridge.audit.query() if r.decision_index == last.index]
    assert len(rows) == MACHINES and {r.assignment for r in rows} == {"incumbent"}
    ledger = bridge.loop.ledger
    statuses = {ledger.get(c.command_id).status for c in last.commands}
    assert len(last.commands) == MACHINES and statuses == {"confirmed"}  # applied, read back
    assert deployment.dedup.applied_twice() == []


def test_the_page_survives_a_bridge_restart(plant, driver):
    deployment, console = plant
    driver.get(console.url + "/")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr[data-machine]")) == MACHINES)
    deployment.bridge.stop()
    wait(driver, lambda d: "bridge is offline" in d.find_element(By.ID, "health").text, 5)
    assert "stale" in driver.find_element(By.TAG_NAME, "body").get_attribute("class")
    restarted = deployment.restart_bridge()  # on the same store
    before = seq(driver, "machining-1")
    run(deployment, 1)
    wait(driver, lambda d: seq(d, "machining-1") != before)
    wait(driver, lambda d: d.find_element(By.ID, "health").text.startswith("LIVE"), 10)
    assert restarted.loop.gate.stage == "rolled_back"  # resumed from the store
