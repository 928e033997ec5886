"""`make bench-realtime`: websocket fan-out under load, over the real ASGI server and Redis.

50 clients on one map send cursors at 10 Hz while 10 edits a second are made
(feature creates spread over the clients and, by default, over each second;
BENCH_EDIT_PATTERN=burst makes each second's 10 within ~100 ms) for BENCH_SECONDS (60). The clients
run in BENCH_PROCESSES (5) load-generator processes, so the generator is not
the bottleneck it measures. Every client measures cursor and edit latency as it
receives them: send times ride in the cursor coordinates and in the feature
properties, and all processes read the same host clock (`time.time()`), so
the load generator must run on the server's host.

Lost and duplicated edits are counted exactly: once every client's writes are
acknowledged, the map's last seq is read from the database, and each client
keeps reading until it has seen it (or BENCH_DRAIN_SECONDS pass); every event
after the seq it said hello with must have arrived exactly once. The server's
and the generator's CPU are read from /proc. Prints and writes
var/bench/realtime.json. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import resource
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
from django.db import connections  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.accounts.services import api_token_create  # noqa: E402
from apps.collaboration.selectors import map_last_seq  # noqa: E402
from apps.layers.models import Layer  # noqa: E402
from apps.layers.services import layer_create  # noqa: E402
from apps.maps.models import Map  # noqa: E402
from apps.maps.selectors import actor_for  # noqa: E402
from apps.maps.services import map_create, map_layer_add  # noqa: E402
from apps.workspaces.models import Workspace  # noqa: E402
from apps.workspaces.services import workspace_create  # noqa: E402
from tests.benchmarks.common import process_tree, server  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "5"))
SERVER_WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# uvicorn's --ws-per-message-deflate; off, as compose/Dockerfile and compose/local/serve.sh serve.
WS_DEFLATE = os.environ.get("BENCH_WS_DEFLATE", "false")
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
DRAIN_SECONDS = float(os.environ.get("BENCH_DRAIN_SECONDS", "30"))
CURSOR_HZ = 10
# "spread": a second's 10 editors each edit in their own tenth of it, as independent people would;
# "burst": all 10 within the same ~100 ms (the clients' cursor phases), a harsher, synchronised load.
EDIT_PATTERN = os.environ.get("BENCH_EDIT_PATTERN", "spread")
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


class Plan:
    """What every client of one generator process shares: where to connect, when to stop, the final seq."""

    def __init__(self, url: str, key: str, layer_id: str, stop_at: float, final_seq: Any, final_ready: Any) -> None:
        self.url, self.layer_id, self.stop_at = url, layer_id, stop_at
        self.headers = {"Authorization": f"Token {key}", "Origin": f"http://127.0.0.1:{PORT}"}
        self.final_seq, self.final_ready = final_seq, final_ready
        self.final_wait: asyncio.Future[bool] | None = None

    async def wait_final_seq(self) -> int:
        if self.final_wait is None:  # one waiting thread per process, shared by its clients
            self.final_wait = asyncio.ensure_future(asyncio.to_thread(self.final_ready.wait))
        await self.final_wait
        return int(self.final_seq.value)


class Client:
    def __init__(self, index: int) -> None:
        self.index = index
        self.cursor_ms: list[float] = []
        self.edit_ms: list[float] = []
        self.ack_ms: list[float] = []  # our write's send to its ack: the write itself, before any fan-out
        self.unanswered: dict[str, float] = {}
        self.seqs: list[int] = []
        self.edits_sent = 0
        self.answers = 0  # acks and errors for our writes
        self.errors: list[str] = []
        self.start_seq = 0
        self.newest_seq = 0
        self.progress = asyncio.Event()  # set on each answer or event, for the waits below

    async def connect(self, plan: Plan) -> Any:
        socket = await websockets.connect(plan.url, additional_headers=plan.headers, max_size=2**20)
        state = json.loads(await socket.recv())
        self.start_seq = self.newest_seq = state["last_seq"]
        await socket.send(json.dumps({"type": "hello", "last_seq": state["last_seq"]}))
        return socket

    async def send_load(self, socket: Any, plan: Plan, edit_slot: int, slots: int) -> None:
        tick = 0
        rng = random.Random(self.index)
        await asyncio.sleep(rng.random() / CURSOR_HZ)  # spread the clients over the period
        while time.time() < plan.stop_at:
            sent = _now_ms()
            lng = (sent % WINDOW_MS) / 1000 - 180
            await socket.send(json.dumps({"type": "cursor", "lng": lng, "lat": rng.uniform(-60, 60)}))
            if tick % CURSOR_HZ == self._edit_tick(slots) and (tick // CURSOR_HZ) % slots == edit_slot:
                await self._send_edit(socket, plan, f"{self.index}-{tick}")
            tick += 1
            await asyncio.sleep(max(0.0, 1 / CURSOR_HZ - (_now_ms() - sent) / 1000))

    def _edit_tick(self, slots: int) -> int:
        """Which tenth of its second this client edits in: the second's editors spread over it, or all at once."""
        return 0 if EDIT_PATTERN == "burst" else (self.index // slots) % CURSOR_HZ

    async def _send_edit(self, socket: Any, plan: Plan, client_msg_id: str) -> None:
        sent = _now_ms()
        await socket.send(json.dumps({
            "type": "feature.create", "client_msg_id": client_msg_id, "layer": plan.layer_id,
            "geometry": {"type": "Point", "coordinates": [24.9, 60.2]},
            "properties": {"sent_ms": sent, "client": self.index},
        }))  # fmt: skip
        self.edits_sent += 1
        self.unanswered[client_msg_id] = sent

    async def wait_until(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.progress.clear()
            try:
                await asyncio.wait_for(self.progress.wait(), deadline - time.monotonic())
            except TimeoutError:
                return

    async def read(self, socket: Any) -> None:
        async for raw in socket:
            self._record(json.loads(raw), _now_ms())
            self.progress.set()

    def _record(self, message: dict[str, Any], now: float) -> None:
        kind = message["type"]
        if kind == "cursors":
            for cursor in message["cursors"]:
                self._record_cursor(cursor, now)
        elif kind == "cursor":
            self._record_cursor(message, now)
        elif kind == "event":
            self.seqs.append(message["seq"])
            self.newest_seq = max(self.newest_seq, message["seq"])
            properties = message["payload"].get("properties", {})
            if properties.get("client") not in (None, self.index):  # latency as the others see it
                self.edit_ms.append(now - properties["sent_ms"])
        elif kind in ("ack", "error"):
            if kind == "ack" and message["client_msg_id"] in self.unanswered:
                self.ack_ms.append(now - self.unanswered.pop(message["client_msg_id"]))
            self.answers += kind == "ack" or bool(message.get("client_msg_id"))
            if kind == "error":
                self.errors.append(message.get("code", "?"))

    def _record_cursor(self, cursor: dict[str, Any], now: float) -> None:
        sent = (cursor["lng"] + 180) * 1000
        self.cursor_ms.append((now % WINDOW_MS - sent) % WINDOW_MS)

    def summary(self) -> dict[str, Any]:
        return {
            "cursor_ms": self.cursor_ms, "edit_ms": self.edit_ms, "ack_ms": self.ack_ms, "seqs": self.seqs,
            "start_seq": self.start_seq,
            "edits_sent": self.edits_sent, "answers": self.answers, "errors": self.errors,
        }  # fmt: skip


async def _client_life(client: Client, plan: Plan, edit_slot: int, slots: int, sent: Any) -> None:
    """Send the load, wait for our writes' answers, then read until the map's final seq has arrived."""
    released = False
    try:
        socket = await client.connect(plan)
        reader = asyncio.create_task(client.read(socket))
        await client.send_load(socket, plan, edit_slot, slots)
        await client.wait_until(lambda: client.answers >= client.edits_sent, DRAIN_SECONDS)
        sent.release()
        released = True
        final_seq = await plan.wait_final_seq()
        await client.wait_until(lambda: client.newest_seq >= final_seq, DRAIN_SECONDS)
        reader.cancel()
        await socket.close()
    except (OSError, websockets.ConnectionClosed) as exc:  # reported, and counted as lost events
        client.errors.append(type(exc).__name__)
    finally:
        if not released:
            sent.release()


async def _run_group(indices: list[int], plan: Plan, sent: Any) -> list[dict[str, Any]]:
    clients = [Client(i) for i in indices]
    # Each second, EDITS_PER_SECOND of the clients (a rotating slot) create one feature.
    slots = max(1, CLIENTS // EDITS_PER_SECOND)
    await asyncio.gather(*(_client_life(c, plan, c.index % slots, slots, sent) for c in clients))
    return [c.summary() for c in clients]


def _generator(indices: list[int], plan: Plan, sent: Any, results: Any) -> None:
    """One load-generator process: its share of the clients on its own event loop."""
    results.put(asyncio.run(_run_group(indices, plan, sent)))


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, IndexError):
            continue
    return total


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))], 1)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # children that have been waited for
    return usage.ru_utime + usage.ru_stime


def _generate(
    map: Map, layer: Layer, key: str, server_pids: list[int]
) -> tuple[list[dict[str, Any]], int, dict[str, float]]:
    """Run the generator processes: every client's summary, the map's final seq, and the CPU % while loaded."""
    context = multiprocessing.get_context("fork")
    final_seq, final_ready = context.Value("q", 0), context.Event()
    sent, results = context.Semaphore(0), context.Queue()
    url = f"ws://127.0.0.1:{PORT}/ws/maps/{map.pk}/"
    plan = Plan(url, key, str(layer.pk), time.time() + SECONDS + 2, final_seq, final_ready)
    connections.close_all()  # the children must not share the parent's database connections
    groups = [list(range(CLIENTS))[p::PROCESSES] for p in range(PROCESSES)]
    workers = [context.Process(target=_generator, args=(g, plan, sent, results)) for g in groups if g]
    cpu_before, started = _children_cpu_seconds(), time.time()
    for worker in workers:
        worker.start()
    server_cpu = _cpu_seconds(server_pids)
    time.sleep(max(0.0, plan.stop_at - time.time()))  # CPU is measured over the load, not the drain after it
    server_cpu_pct = (_cpu_seconds(server_pids) - server_cpu) / (time.time() - started) * 100
    for _ in range(CLIENTS):  # every client's writes are answered (or it gave up waiting)
        sent.acquire(timeout=SECONDS + 2 * DRAIN_SECONDS + 60)
    final_seq.value = map_last_seq(map)  # nothing writes any more: the exact last event
    final_ready.set()
    summaries = [summary for _ in workers for summary in results.get()]
    for worker in workers:
        worker.join()
    cpu_pct = {
        "server": server_cpu_pct,
        "generator": (_children_cpu_seconds() - cpu_before) / (time.time() - started) * 100,
    }
    return summaries, int(final_seq.value), cpu_pct


def _report(clients: list[dict[str, Any]], final_seq: int, cpu_pct: dict[str, float]) -> dict[str, Any]:
    # Each client must see every event after the seq it said hello with, exactly once.
    lost = sum(len(set(range(c["start_seq"] + 1, final_seq + 1)) - set(c["seqs"])) for c in clients)
    duplicates = sum(len(c["seqs"]) - len(set(c["seqs"])) for c in clients)
    edit_ms = [v for c in clients for v in c["edit_ms"]]
    cursor_ms = [v for c in clients for v in c["cursor_ms"]]
    ack_ms = [v for c in clients for v in c["ack_ms"]]
    return {
        "clients": CLIENTS, "processes": PROCESSES, "server_workers": SERVER_WORKERS, "ws_deflate": WS_DEFLATE,
        "seconds": SECONDS, "edit_pattern": EDIT_PATTERN,
        "edits_sent": sum(c["edits_sent"] for c in clients), "final_seq": final_seq,
        "edits_lost": lost, "duplicates": duplicates,
        "edit_p50_ms": _percentile(edit_ms, 50), "edit_p95_ms": _percentile(edit_ms, 95),
        "edit_p99_ms": _percentile(edit_ms, 99), "ack_p50_ms": _percentile(ack_ms, 50),
        "ack_p95_ms": _percentile(ack_ms, 95), "cursor_p50_ms": _percentile(cursor_ms, 50),
        "cursor_p95_ms": _percentile(cursor_ms, 95), "cursor_p99_ms": _percentile(cursor_ms, 99),
        "cursor_messages_received": len(cursor_ms), "server_cpu_pct": round(cpu_pct["server"], 1),
        "generator_cpu_pct": round(cpu_pct["generator"], 1), "load_average": [round(v, 2) for v in os.getloadavg()],
        "errors": sorted({e for c in clients for e in c["errors"]}),
    }  # fmt: skip


def main() -> None:
    map, layer, key = _setup()
    server_process = server(PORT, workers=SERVER_WORKERS, extra=("--ws-per-message-deflate", WS_DEFLATE))
    try:
        clients, final_seq, cpu_pct = _generate(map, layer, key, process_tree(server_process.pid))
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)
    result = _report(clients, final_seq, cpu_pct)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"[bench] wrote {OUT}")


if __name__ == "__main__":
    main()
