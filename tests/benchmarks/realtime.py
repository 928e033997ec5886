"""`make bench-realtime`: websocket fan-out under load, over the real ASGI server and Redis.

50 clients on one map send cursors at 10 Hz while 10 edits a second are made
(feature creates spread over the clients) for BENCH_SECONDS (60). Every client
measures cursor and edit latency as it receives them (send times ride in the
cursor coordinates and in the feature properties), counts lost and duplicated
events, and the server's CPU is read from /proc. Prints and writes
var/bench/realtime.json. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.accounts.services import api_token_create  # noqa: E402
from apps.layers.models import Layer  # noqa: E402
from apps.layers.services import layer_create  # noqa: E402
from apps.maps.models import Map  # noqa: E402
from apps.maps.selectors import actor_for  # noqa: E402
from apps.maps.services import map_create, map_layer_add  # noqa: E402
from apps.workspaces.models import Workspace  # noqa: E402
from apps.workspaces.services import workspace_create  # noqa: E402
from tests.benchmarks.common import server  # noqa: E402  (the same uvicorn launcher)

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
CURSOR_HZ = 10
EDITS_PER_SECOND = 10
PORT = int(os.environ.get("BENCH_PORT", "8765"))
OUT = ROOT / "var" / "bench" / "realtime.json"
WINDOW_MS = 360_000  # cursor send times are encoded modulo 6 minutes in the longitude


def _now_ms() -> float:
    return time.time() * 1000


def _setup() -> tuple[Map, Layer, str]:
    owner = User.objects.filter(email="bench@meridian.test").first() or User.objects.create_user(
        "bench@meridian.test", "bench-password-not-secret"
    )
    workspace = Workspace.objects.filter(slug="bench").first()
    if workspace is None:
        workspace = workspace_create(user=owner, name="Bench", slug="bench")
    actor = actor_for(owner)
    map = map_create(actor=actor, user=owner, workspace=workspace, name=f"Realtime bench {int(time.time())}")
    layer = layer_create(actor=actor, user=owner, workspace=workspace, name="Realtime edits", geometry_type="point")
    access_actions = frozenset({"view", "edit", "manage"})
    map_layer_add(actor=actor, user=owner, map=map, layer=layer, layer_permissions=access_actions)
    _, key = api_token_create(user=owner, name="bench-realtime")
    return map, layer, key


class Client:
    def __init__(self, index: int) -> None:
        self.index = index
        self.cursor_ms: list[float] = []
        self.edit_ms: list[float] = []
        self.seqs: list[int] = []
        self.acks = 0
        self.errors: list[str] = []
        self.start_seq = 0

    async def run(self, url: str, headers: dict[str, str], layer_id: str, stop_at: float, edit_slots: set[int]) -> None:
        async with websockets.connect(url, additional_headers=headers, max_size=2**20) as socket:
            state = json.loads(await socket.recv())
            self.start_seq = state["last_seq"]
            await socket.send(json.dumps({"type": "hello", "last_seq": state["last_seq"]}))
            reader = asyncio.create_task(self._read(socket))
            await self._send(socket, layer_id, stop_at, edit_slots)
            await asyncio.sleep(3)  # let the last broadcasts arrive
            reader.cancel()

    async def _send(self, socket: Any, layer_id: str, stop_at: float, edit_slots: set[int]) -> None:
        tick = 0
        rng = random.Random(self.index)
        await asyncio.sleep(rng.random() / CURSOR_HZ)  # spread the clients over the period
        while time.time() < stop_at:
            sent = _now_ms()
            lng = (sent % WINDOW_MS) / 1000 - 180
            await socket.send(json.dumps({"type": "cursor", "lng": lng, "lat": rng.uniform(-60, 60)}))
            if tick % CURSOR_HZ == 0 and (tick // CURSOR_HZ) % (CLIENTS // EDITS_PER_SECOND or 1) in edit_slots:
                await socket.send(json.dumps({
                    "type": "feature.create", "client_msg_id": f"{self.index}-{tick}", "layer": layer_id,
                    "geometry": {"type": "Point", "coordinates": [24.9, 60.2]},
                    "properties": {"sent_ms": _now_ms(), "client": self.index},
                }))  # fmt: skip
            tick += 1
            await asyncio.sleep(max(0.0, 1 / CURSOR_HZ - (_now_ms() - sent) / 1000))

    async def _read(self, socket: Any) -> None:
        async for raw in socket:
            message = json.loads(raw)
            kind = message["type"]
            now = _now_ms()
            if kind == "cursor":
                sent = (message["lng"] + 180) * 1000
                self.cursor_ms.append((now % WINDOW_MS - sent) % WINDOW_MS)
            elif kind == "event":
                self.seqs.append(message["seq"])
                sent_ms = message["payload"].get("properties", {}).get("sent_ms")
                if sent_ms is not None:
                    self.edit_ms.append(now - sent_ms)
            elif kind == "ack":
                self.acks += 1
            elif kind == "error":
                self.errors.append(message.get("code", "?"))


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, IndexError):
            continue
    return total


def _server_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [parent, *(int(p) for p in children.read_text().split())] if children.exists() else [parent]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))], 1)


async def _run_clients(map: Map, layer: Layer, key: str) -> list[Client]:
    url = f"ws://127.0.0.1:{PORT}/ws/maps/{map.pk}/"
    headers = {"Authorization": f"Token {key}", "Origin": f"http://127.0.0.1:{PORT}"}
    clients = [Client(i) for i in range(CLIENTS)]
    stop_at = time.time() + SECONDS + 2
    # Each second, EDITS_PER_SECOND of the clients (a rotating slot) create one feature.
    slots = max(1, CLIENTS // EDITS_PER_SECOND)
    await asyncio.gather(*(c.run(url, headers, str(layer.pk), stop_at, {c.index % slots}) for c in clients))
    return clients


def main() -> None:
    map, layer, key = _setup()
    server_process = server()
    try:
        pids = _server_pids(server_process.pid)
        cpu_before, wall_before = _cpu_seconds(pids), time.time()
        clients = asyncio.run(_run_clients(map, layer, key))
        cpu_pct = (_cpu_seconds(pids) - cpu_before) / (time.time() - wall_before) * 100
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)
    edits_sent = sum(c.acks for c in clients)
    last_seq = max((s for c in clients for s in c.seqs), default=0)
    # Each client must see every event after the seq it said hello with, exactly once.
    lost = sum(len(set(range(c.start_seq + 1, last_seq + 1)) - set(c.seqs)) for c in clients)
    duplicates = sum(len(c.seqs) - len(set(c.seqs)) for c in clients)
    edit_ms = [v for c in clients for v in c.edit_ms]
    cursor_ms = [v for c in clients for v in c.cursor_ms]
    result = {
        "clients": CLIENTS, "seconds": SECONDS, "edits_sent": edits_sent, "edits_lost": lost,
        "duplicates": duplicates, "edit_p50_ms": _percentile(edit_ms, 50), "edit_p95_ms": _percentile(edit_ms, 95),
        "edit_p99_ms": _percentile(edit_ms, 99), "cursor_p95_ms": _percentile(cursor_ms, 95),
        "cursor_messages_received": len(cursor_ms), "server_cpu_pct": round(cpu_pct, 1),
        "errors": sorted({e for c in clients for e in c.errors}),
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"[bench] wrote {OUT}; median cursor latency {statistics.median(cursor_ms) if cursor_ms else None} ms")


if __name__ == "__main__":
    main()
