"""Measure the operator console: update lag telemetry → screen and memory under load; take the
README's screenshots.

    python scripts/bench_console.py lag --machines 100 --rate-hz 10 --seconds 600
    python scripts/bench_console.py screenshots --out edge_bridge/console/screenshots

``lag``: a Mosquitto broker, ``edge_bridge.load.SyntheticEquipment`` publishing telemetry of
``--machines`` machines at ``--rate-hz`` (every message stamped ``sent_at``), the console as a
separate process (``scripts/console.py serve``) and a headless Chromium on its overview. The
page records, for every machine row that shows a new sample, ``now − sent_at`` (both on this
machine's clock) in ``window.__lags``; the console's own arrival delay (received − sent_at of
the latest sample) splits it into broker → console and console → screen. The bench collects
them every ``--sample-s`` seconds with the console process's resident memory
(``/proc/<pid>/status`` VmRSS). Prints the lag percentiles, the memory at start/end and its
slope (least squares after the first 20 % of the run), and writes everything as JSON to
``--out``.

``screenshots``: the demo setup (``scripts/console.py demo``: candidate behind an approval gate,
a wear drift on the canary machine) free-running at ``--realtime-factor``; approves the
promotion in the browser, waits for the drift to be flagged, and saves the overview, the drifting
machine's view and the rollout view as PNGs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SITE = "bench"


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid``, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {}
    array = np.asarray(values)
    return {
        "count": float(array.size),
        "p50_s": float(np.percentile(array, 50)),
        "p95_s": float(np.percentile(array, 95)),
        "p99_s": float(np.percentile(array, 99)),
        "max_s": float(array.max()),
    }


def lag(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from edge_bridge.broker import Broker
    from edge_bridge.console.auth import add_user
    from edge_bridge.console.server import free_port
    from edge_bridge.load import SyntheticEquipment, scaled_scenario
    from envs.config import write_toml
    from tests.console import browser

    folder = Path(tempfile.mkdtemp(prefix="bench_console_"))
    broker = Broker(folder / "mosquitto")
    broker.start()
    console: subprocess.Popen[bytes] | None = None
    driver = None
    equipment = None
    try:
        account = broker.account("operator")
        (folder / "mqtt.password").write_text(account.password)
        add_user(folder / "users.toml", "bench", "operator", "bench-password")
        port = free_port()
        write_toml(
            {
                "site": SITE,
                "store": str(folder / "no-bridge.sqlite"),
                "runs": str(folder / "runs"),
                "users": str(folder / "users.toml"),
                "refusal_log": str(folder / "refused.jsonl"),
                "port": port,
                "push_interval_s": args.push_interval_s,
                "mqtt_host": broker.host,
                "mqtt_port": broker.port,
                "mqtt_username": account.username,
                "mqtt_password_file": str(folder / "mqtt.password"),
            },
            folder / "console.toml",
        )
        console = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "scripts/console.py"),
                "serve",
                "--config",
                str(folder / "console.toml"),
            ],
            cwd=REPO,
        )
        url = f"http://127.0.0.1:{port}"
        scenario = scaled_scenario(args.machines)
        equipment = SyntheticEquipment(
            scenario,
            broker.settings("equipment", "load-1", session_expiry_s=600),
            site=SITE,
            rate_hz=args.rate_hz,
        ).start()
        deadline = time.monotonic() + 30
        while True:
            try:
                import urllib.request

                urllib.request.urlopen(url + "/login", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or console.poll() is not None:
                    raise RuntimeError("the console did not start") from None
                time.sleep(0.2)
        publisher = threading.Thread(
            target=equipment.run, args=(args.seconds,), name="load", daemon=True
        )
        publisher.start()
        driver = browser.chromium()
        browser.sign_in(driver, url, "bench", "bench-password")
        started = time.monotonic()
        samples: list[dict[str, Any]] = []
        lags: list[float] = []
        while publisher.is_alive():
            time.sleep(args.sample_s)
            batch = driver.execute_script("return window.__lags.splice(0);")
            rows = driver.execute_script(
                "return document.querySelectorAll('tr[data-machine]').length;"
            )
            delay = driver.execute_async_script(
                "const done = arguments[0]; fetch('/api/overview').then(r => r.json())"
                ".then(d => done(d.health.telemetry_delay_s)).catch(() => done(null));"
            )
            lags += batch
            sample = {
                "arrival_delay_s": delay,
                "t_s": time.monotonic() - started,
                "rss_mb": rss_mb(console.pid),
                "lags": len(batch),
                "p95_s": _percentiles(batch).get("p95_s"),
                "rows": rows,
            }
            samples.append(sample)
            print(
                f"  t={sample['t_s']:6.0f} s  rss {sample['rss_mb']:6.1f} MiB  rows {rows}  "
                f"updates {len(batch)}  p95 {sample['p95_s'] or float('nan'):.3f} s  "
                f"(sent -> console {delay if delay is not None else float('nan'):.3f} s)",
                flush=True,
            )
        times = np.array([s["t_s"] for s in samples])
        memory = np.array([s["rss_mb"] for s in samples])
        keep = times >= 0.2 * times[-1] if len(times) else times
        slope = (
            float(np.polyfit(times[keep], memory[keep], 1)[0] * 3600) if keep.sum() >= 3 else None
        )
        result = {
            "machines": args.machines,
            "rate_hz": args.rate_hz,
            "seconds": args.seconds,
            "push_interval_s": args.push_interval_s,
            "lag": _percentiles(lags),
            "rss_start_mb": float(memory[0]) if len(memory) else None,
            "rss_end_mb": float(memory[-1]) if len(memory) else None,
            "rss_slope_mb_per_h": slope,
            "late_ticks": equipment.report.late_ticks,
            "samples": samples,
        }
    finally:
        if driver is not None:
            driver.quit()
        if equipment is not None:
            equipment.close()
        if console is not None:
            console.terminate()
            console.wait(10)
        broker.stop()
    return result


def screenshots(args: argparse.Namespace) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from edge_bridge.console.auth import User, hash_password
    from scripts.console import start_demo
    from tests.console import browser

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    users = {"operator": User("operator", "operator", hash_password("demo-password"))}
    folder = Path(tempfile.mkdtemp(prefix="console_shots_"))
    deployment, server, _ = start_demo(
        folder,
        port=0,
        realtime_factor=args.realtime_factor,
        drift_at_h=args.drift_at_h,
        users=users,
    )
    driver = browser.chromium(1500, 1000)
    timeline: list[str] = []
    try:
        deployment.run_emulator()
        browser.sign_in(driver, server.url, "operator", "demo-password")
        gate = deployment.bridge.loop.gate
        deadline = time.monotonic() + args.timeout_s
        approved = False
        while time.monotonic() < deadline:
            if gate.pending_approvals() and not approved:
                driver.get(server.url + "/rollout")
                button = WebDriverWait(driver, 10).until(
                    lambda d: d.find_elements(By.ID, "approve")
                )[0]
                button.click()
                WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert).accept()
                approved = True
            drifted = any(
                r.drift for r in deployment.bridge.audit.query(machine=args.drift_machine)[-3:]
            )
            if drifted and (gate.stage == "rolled_back" or not approved):
                time.sleep(3 * 300 / args.realtime_factor)  # a few intervals after the flag
                break
            time.sleep(0.5)
        pages = {
            "overview.png": "/",
            "machine.png": f"/machine/{args.drift_machine}",
            "rollout.png": "/rollout",
        }
        for name, path in pages.items():
            driver.get(server.url + path)
            time.sleep(2.5)
            driver.save_screenshot(str(out / name))
        timeline = [
            f"{e.kind}: {e.reason}"
            for e in deployment.bridge.audit.events()
            if e.kind not in ("line_kpi", "node_birth")
        ]
    finally:
        driver.quit()
        server.stop()
        deployment.stop()
    return {"out": str(out), "files": sorted(pages), "timeline": timeline[-12:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    lag_parser = commands.add_parser("lag", help="update lag and memory under load")
    lag_parser.add_argument("--machines", type=int, default=100)
    lag_parser.add_argument("--rate-hz", type=float, default=10.0)
    lag_parser.add_argument("--seconds", type=float, default=120.0)
    lag_parser.add_argument("--sample-s", type=float, default=5.0)
    lag_parser.add_argument("--push-interval-s", type=float, default=0.2)
    lag_parser.add_argument("--out", default="runs/bench_console/lag.json")
    shots = commands.add_parser("screenshots", help="the README's screenshots")
    shots.add_argument("--out", default="edge_bridge/console/screenshots")
    shots.add_argument("--realtime-factor", type=float, default=300.0)
    shots.add_argument("--drift-at-h", type=float, default=2.0)
    shots.add_argument("--drift-machine", default="machining-1")
    shots.add_argument("--timeout-s", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.command == "lag":
        if args.machines < 1 or not args.rate_hz > 0 or not args.seconds > 0:
            parser.error("--machines >= 1, --rate-hz > 0 and --seconds > 0")
        result = lag(args)
        summary = {k: v for k, v in result.items() if k != "samples"}
        print(json.dumps(summary, indent=1))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    else:
        print(json.dumps(screenshots(args), indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
