"""The console's web application (FastAPI): pages, the JSON API, the live event stream and the
operator actions.

:func:`create_app` builds it around a :class:`Console` (settings, users, sessions, the live MQTT
state, the store reader, the refusal log). Every route but ``/login``, ``/api/login`` and the
static files needs a session; ``POST /api/action`` needs the operator role, the session's CSRF
token in ``X-CSRF-Token`` and a fresh ``nonce``, and becomes an
:class:`~edge_bridge.schema.OperatorCommand` on ``operator/command`` (``request_id`` = the
nonce): the bridge acts on it and audits it with the operator's name. Refusals answer 403 (401
for reads without a session, 409 for a replayed nonce) and are written to the refusal log.
Bad query parameters answer 400/404/422 with a message; unexpected errors 500 without a trace.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles

from edge_bridge import topics
from edge_bridge.console import queries, runs
from edge_bridge.console.auth import Session, Sessions, User, load_users, verify_password
from edge_bridge.console.config import ConsoleSettings, RefusalLog
from edge_bridge.console.live import LiveState
from edge_bridge.console.pages import page
from edge_bridge.schema import OPERATOR_ACTIONS, OperatorCommand, SchemaError
from edge_bridge.store import StoreError

__all__ = ["COOKIE", "Console", "create_app"]

COOKIE = "tf_console"
STATIC = Path(__file__).parent / "static"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SEEN_NONCES = 10_000


class Console:
    """The console's state shared by the routes (module docstring)."""

    def __init__(
        self,
        settings: ConsoleSettings,
        live: LiveState,
        users: dict[str, User] | None = None,
    ) -> None:
        self.settings = settings
        self.live = live
        self.users = users if users is not None else load_users(settings.users)
        self.sessions = Sessions(settings.session_timeout_s)
        self.reader = queries.StoreReader(settings.store)
        self.refusals = RefusalLog(settings.refusal_log)
        self.cohorts = self._cohorts()
        self._nonces: OrderedDict[str, None] = OrderedDict()

    def _cohorts(self) -> list[str]:
        if not self.settings.gate:
            return []
        from edge_bridge.gate_config import load_gate_config

        return [cohort.name for cohort in load_gate_config(self.settings.gate).cohorts]

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def refuse(self, request: Request, status: int, reason: str, user: str | None = None) -> None:
        """Log the refusal and raise the HTTP error."""
        client = request.client.host if request.client else None
        self.refusals.write(reason, path=request.url.path, user=user, client=client, status=status)
        raise HTTPException(status, reason)

    def fresh_nonce(self, nonce: str) -> bool:
        """Whether ``nonce`` was never used (then it is remembered)."""
        if nonce in self._nonces:
            return False
        self._nonces[nonce] = None
        while len(self._nonces) > _SEEN_NONCES:
            self._nonces.popitem(last=False)
        return True

    def read(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """A store query; 503 with the reason when the store cannot be read."""
        try:
            return self.reader.read(query, *args, **kwargs)
        except StoreError as error:
            raise HTTPException(503, f"the bridge's store cannot be read: {error}") from error


def _number(name: str, text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise HTTPException(400, f"{name} = {text!r} must be a number of plant seconds") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise HTTPException(400, f"{name} = {text!r} must be a finite number")
    return value


def _machine_name(name: str) -> str:
    try:
        return topics.check_name(name, "machine")
    except ValueError as error:
        raise HTTPException(400, str(error)) from None


def create_app(console: Console) -> FastAPI:
    """The web application over ``console`` (module docstring)."""
    app = FastAPI(title="twinfactory console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error ({type(error).__name__})"}, 500)

    def reader(request: Request) -> Session:
        session = console.session(request)
        if session is None:
            raise HTTPException(401, "not signed in (or the session timed out); sign in again")
        return session

    def view(request: Request, name: str, **data: str) -> Response:
        if console.session(request) is None:
            return RedirectResponse(f"/login?next={request.url.path}", 303)
        return HTMLResponse(page(name, **data))

    # -- pages ---------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request) -> Response:
        return view(request, "overview")

    @app.get("/machine/{name}", response_class=HTMLResponse)
    def machine_page(request: Request, name: str) -> Response:
        return view(request, "machine", machine=_machine_name(name))

    @app.get("/rollout", response_class=HTMLResponse)
    def rollout_page(request: Request) -> Response:
        return view(request, "rollout")

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request) -> Response:
        return view(request, "audit")

    @app.get("/runs", response_class=HTMLResponse)
    def runs_page(request: Request) -> Response:
        return view(request, "runs")

    @app.get("/login", response_class=HTMLResponse)
    def login_page() -> Response:
        return HTMLResponse(page("login"))

    # -- sessions ------------------------------------------------------------------------
    @app.post("/api/login")
    async def login(request: Request) -> Response:
        try:
            body = await request.json()
            name, password = str(body["user"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            raise HTTPException(400, 'send JSON {"user": ..., "password": ...}') from None
        user = console.users.get(name)
        if user is None or not verify_password(password, user.password_hash):
            console.refuse(request, 401, "wrong user name or password", user=name)
        assert user is not None
        session = console.sessions.open(user)
        response = JSONResponse({"user": user.name, "role": user.role, "csrf": session.csrf})
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.post("/api/logout")
    def logout(request: Request) -> Response:
        console.sessions.close(request.cookies.get(COOKIE))
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE)
        return response

    @app.get("/api/session")
    def session_info(request: Request) -> dict[str, Any]:
        session = reader(request)
        return {"user": session.user.name, "role": session.user.role, "csrf": session.csrf}

    # -- reads ---------------------------------------------------------------------------
    @app.get("/api/overview")
    def overview(request: Request) -> dict[str, Any]:
        reader(request)
        version, machines = console.live.changed_since(-1)
        commands = _optional(console, queries.last_commands) or {}
        return {
            "version": version,
            "machines": machines,
            "commands": commands,
            "status": console.live.status_view(),
            "health": console.live.health(),
        }

    @app.get("/api/machine/{name}")
    def machine(request: Request, name: str) -> dict[str, Any]:
        reader(request)
        name = _machine_name(name)
        detail = console.live.machine_detail(name)
        if detail is None:
            raise HTTPException(404, f"no machine {name!r} has reported; see the overview")
        rows = _optional(console, queries.audit_rows, machine=name) or []
        detail["audit"] = [_plain(r) for r in rows[-50:]]
        detail["health"] = console.live.health()
        return detail

    @app.get("/api/rollout")
    def rollout(request: Request) -> dict[str, Any]:
        reader(request)
        return {
            "gate": console.read(queries.gate_view),
            "timeline": console.read(queries.timeline),
            "status": console.live.status_view(),
            "cohorts": console.cohorts,
            "health": console.live.health(),
        }

    def audit_filters(
        machine: str | None,
        stage: str | None,
        reason: str | None,
        since: str | None,
        until: str | None,
        limit: int | None,
    ) -> dict[str, Any]:
        return {
            "machine": _machine_name(machine) if machine else None,
            "stage": stage or None,
            "reason": reason or None,
            "since": _number("since", since),
            "until": _number("until", until),
            "limit": limit,
        }

    def audit_query(filters: dict[str, Any]) -> list[Any]:
        try:
            return list(console.read(queries.audit_rows, **filters))
        except ValueError as error:
            raise HTTPException(400, str(error)) from None

    @app.get("/api/audit")
    def audit(
        request: Request,
        machine: str | None = None,
        stage: str | None = None,
        reason: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = Query(500, ge=1, le=100_000),
    ) -> dict[str, Any]:
        reader(request)
        rows = audit_query(audit_filters(machine, stage, reason, since, until, limit))
        return {"rows": [_plain(r) for r in rows]}

    @app.get("/api/audit.csv")
    def audit_csv(
        request: Request,
        machine: str | None = None,
        stage: str | None = None,
        reason: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = Query(None, ge=1, le=10_000_000),
    ) -> Response:
        reader(request)
        rows = audit_query(audit_filters(machine, stage, reason, since, until, limit))
        return PlainTextResponse(
            queries.audit_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )

    @app.get("/api/runs")
    def run_list(request: Request) -> dict[str, Any]:
        reader(request)
        return {"root": console.settings.runs, "files": runs.list_runs(console.settings.runs)}

    @app.get("/api/runs/file")
    def run_file(request: Request, path: str = Query(..., min_length=1)) -> dict[str, Any]:
        reader(request)
        try:
            return runs.load_run_file(console.settings.runs, path)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None

    @app.get("/api/runs/raw")
    def run_raw(request: Request, path: str = Query(..., min_length=1)) -> Response:
        reader(request)
        try:
            target = runs.resolve(console.settings.runs, path)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        if target.suffix.lower() != ".png" or not target.is_file():
            raise HTTPException(404, f"{path}: no such PNG under the runs folder")
        return FileResponse(target, media_type="image/png")

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        reader(request)
        token = request.cookies.get(COOKIE)
        return StreamingResponse(
            _events(console, request, token),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- actions -------------------------------------------------------------------------
    @app.post("/api/action")
    async def action(request: Request) -> dict[str, Any]:
        session = console.session(request)
        if session is None:
            console.refuse(request, 403, "action refused: not signed in or the session timed out")
        assert session is not None
        name = session.user.name
        if session.user.role != "operator":
            console.refuse(request, 403, f"action refused: {name} is a viewer", user=name)
        if not console.sessions.csrf_matches(session, request.headers.get("X-CSRF-Token")):
            console.refuse(request, 403, "action refused: missing or stale CSRF token", user=name)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError
        except (ValueError, TypeError):
            raise HTTPException(400, "send a JSON object {action, nonce, ...}") from None
        nonce = str(body.get("nonce", ""))
        if not _NONCE.fullmatch(nonce):
            raise HTTPException(
                400, "nonce must be 16-64 letters, digits, '_' or '-' (fresh per click)"
            )
        if not console.fresh_nonce(nonce):
            console.refuse(
                request, 409, f"action refused: nonce {nonce} was used (a replay)", user=name
            )
        kind = body.get("action")
        if kind not in OPERATOR_ACTIONS:
            raise HTTPException(400, f"action {kind!r}: use one of {list(OPERATOR_ACTIONS)}")
        target = body.get("machine") or body.get("cohort") or None
        if kind in ("local_control", "resume") and not body.get("machine"):
            raise HTTPException(400, f"{kind} needs a machine")
        if kind == "rollback" and body.get("cohort") and body["cohort"] not in console.cohorts:
            raise HTTPException(400, f"cohort {body['cohort']!r}: use one of {console.cohorts}")
        try:
            command = OperatorCommand(
                action=kind,
                operator=name,
                request_id=nonce,
                issued_at=time.time(),
                machine=target,
                reason=str(body.get("reason", ""))[:500],
            )
        except SchemaError as error:
            raise HTTPException(400, str(error)) from None
        try:
            console.live.publish_operator(command)
        except RuntimeError as error:
            raise HTTPException(503, str(error)) from None
        return {"sent": True, "request_id": nonce, "action": kind, "target": target}

    return app


def _optional(console: Console, query: Any, **kwargs: Any) -> Any:
    """A store query that may fail (store not yet created): None then."""
    try:
        return console.reader.read(query, **kwargs)
    except StoreError:
        return None


def _plain(record: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(record)


async def _events(console: Console, request: Request, token: str | None) -> AsyncIterator[str]:
    """Server-sent events: every ``push_interval_s`` the machines changed since the last event,
    the bridge status and the health; ``event: logout`` when the session ends."""
    version = -1
    interval = console.settings.push_interval_s
    while True:
        if console.sessions.peek(token) is None:
            yield "event: logout\ndata: {}\n\n"
            return
        if await request.is_disconnected():
            return
        version, machines = console.live.changed_since(version)
        payload = {
            "version": version,
            "machines": machines,
            "status": console.live.status_view(),
            "health": console.live.health(),
        }
        yield f"data: {json.dumps(payload, allow_nan=False, default=str)}\n\n"
        await asyncio.sleep(interval)
