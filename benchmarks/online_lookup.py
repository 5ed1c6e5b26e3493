"""Benchmark: online feature lookup, store level (``OnlineStore.read`` / ``write``), SQLite and Redis.

Prints, from one run: p50/p99 latency of reading 1 entity x 50 features and 100 entities x 50 features,
in process, from mloop's SQLite and Redis online stores; write throughput (feature values/s) for a
materialization-sized batch; the floor (the raw engine doing only the core work: ``sqlite3`` SELECT by
primary key / redis-py GET and MGET, no decoding; ``executemany`` / MSET of values encoded beforehand); and,
when its throwaway venv exists, the peer: Feast 0.67 with its SQLite online store, both at its store level
(``SqliteOnlineStore.online_read``) and through ``FeatureStore.get_online_features``. Medians over --repeat
runs, and the ratios.

    .venv/bin/python benchmarks/online_lookup.py                      # starts a throwaway redis-server
    .venv/bin/python benchmarks/online_lookup.py --reads 5000 --repeat 5
    .venv/bin/python benchmarks/online_lookup.py --redis-url redis://127.0.0.1:6379/0 --no-peer

Goals: p99 <= 200 us (SQLite) and <= 1 ms (Redis, loopback) for 1 entity x 50 features;
>= 1M feature values/s written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mloop.features.online import OnlineRow, OnlineStore, encode, open_online_store

HERE = Path(__file__).parent
WORK = HERE / ".work"
PEERS = HERE / ".peers"
FLOATS, INTS, STRINGS = 40, 8, 2
CATEGORIES = ["grocery", "fuel", "restaurants", "online_retail", "travel"]
NOW_US = 1_790_000_000_000_000


def make_values(entities: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    floats = rng.normal(size=(entities, FLOATS)).tolist()
    ints = rng.integers(0, 1000, size=(entities, INTS)).tolist()
    strings = np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), size=(entities, STRINGS))].tolist()
    names = (
        [f"f{i}" for i in range(FLOATS)] + [f"i{i}" for i in range(INTS)] + [f"s{i}" for i in range(STRINGS)]
    )
    return [dict(zip(names, f + i + s, strict=True)) for f, i, s in zip(floats, ints, strings, strict=True)]


def percentiles(call: Callable[[int], Any], n: int) -> tuple[float, float]:
    """p50 and p99 in microseconds of ``call(j)`` for j in range(n)."""
    times = []
    clock = time.perf_counter_ns
    for j in range(n):
        started = clock()
        call(j)
        times.append(clock() - started)
    times.sort()
    return times[len(times) // 2] / 1e3, times[min(len(times) - 1, int(len(times) * 0.99))] / 1e3


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


# --- mloop -------------------------------------------------------------------------------------------------


def bench_store(
    store: OnlineStore, values: list[dict[str, Any]], keys: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    batch_rows = [OnlineRow(str(k), NOW_US, NOW_US, values[k % len(values)]) for k in range(args.write_rows)]
    writes = []
    for rep in range(args.repeat):
        started = time.perf_counter()
        store.write(f"write_{rep}", batch_rows)
        writes.append(len(batch_rows) * len(values[0]) / (time.perf_counter() - started))
        store.drop(f"write_{rep}")
    store.write("stats", [OnlineRow(str(k), NOW_US, NOW_US, v) for k, v in enumerate(values)])
    one = [[("stats", str(k))] for k in keys[: args.reads]]
    many = [
        [("stats", str(k)) for k in keys[j * args.batch : (j + 1) * args.batch]]
        for j in range(args.reads // 10)
    ]
    assert store.read(one[0]).rows[0] is not None
    result: dict[str, Any] = {"write": statistics.median(writes), "one": [], "many": []}
    for _ in range(args.repeat):
        result["one"].append(percentiles(lambda j: store.read(one[j]), len(one)))
        result["many"].append(percentiles(lambda j: store.read(many[j]), len(many)))
    result["one"], result["many"] = median_pair(result["one"]), median_pair(result["many"])
    return result


def bench_sqlite_floor(
    path: Path, values: list[dict[str, Any]], keys: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Raw sqlite3 on the store's own file: SELECT by primary key, no decoding; executemany of encoded rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    one = [("stats", str(k)) for k in keys[: args.reads]]
    many = [[str(k) for k in keys[j * args.batch : (j + 1) * args.batch]] for j in range(args.reads // 10)]
    sql_one = "SELECT value FROM online_rows WHERE view = ? AND key = ?"
    sql_many = (
        f"SELECT key, value FROM online_rows WHERE view = 'stats' AND key IN ({','.join('?' * args.batch)})"
    )
    encoded = [encode(values[k % len(values)]) for k in range(args.write_rows)]
    conn.execute("CREATE TABLE IF NOT EXISTS floor (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID")
    result: dict[str, Any] = {"one": [], "many": [], "write": []}
    for _ in range(args.repeat):
        conn.execute("DELETE FROM floor")
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO floor VALUES (?, ?)", zip(map(str, range(len(encoded))), encoded, strict=True)
        )
        conn.execute("COMMIT")
        result["write"].append(len(encoded) * len(values[0]) / (time.perf_counter() - started))
        result["one"].append(percentiles(lambda j: conn.execute(sql_one, one[j]).fetchone(), len(one)))
        result["many"].append(percentiles(lambda j: conn.execute(sql_many, many[j]).fetchall(), len(many)))
    conn.execute("DROP TABLE floor")
    conn.close()
    return {
        "write": statistics.median(result["write"]),
        "one": median_pair(result["one"]),
        "many": median_pair(result["many"]),
    }


def bench_redis_floor(
    url: str, values: list[dict[str, Any]], keys: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Raw redis-py: GET / MGET of the store's own keys, no decoding; MSET of values encoded beforehand."""
    import redis

    client = redis.Redis.from_url(url)
    one = [f"mloop:stats:r:{k}" for k in keys[: args.reads]]
    many = [
        [f"mloop:stats:r:{k}" for k in keys[j * args.batch : (j + 1) * args.batch]]
        for j in range(args.reads // 10)
    ]
    assert client.get(one[0]) is not None
    encoded = [f"{NOW_US} {NOW_US} {encode(values[k % len(values)])}" for k in range(args.write_rows)]
    result: dict[str, Any] = {"one": [], "many": [], "write": []}
    for _ in range(args.repeat):
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(encoded), 500):
            pipe.mset({f"floor:{k}": encoded[k] for k in range(start, min(len(encoded), start + 500))})
        pipe.execute()
        result["write"].append(len(encoded) * len(values[0]) / (time.perf_counter() - started))
        result["one"].append(percentiles(lambda j: client.get(one[j]), len(one)))
        result["many"].append(percentiles(lambda j: client.mget(many[j]), len(many)))
    for start in range(0, len(encoded), 1000):
        client.unlink(*[f"floor:{k}" for k in range(start, min(len(encoded), start + 1000))])
    client.close()
    return {
        "write": statistics.median(result["write"]),
        "one": median_pair(result["one"]),
        "many": median_pair(result["many"]),
    }


def start_redis() -> tuple[str, subprocess.Popen[bytes], Path] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="mloop-bench-redis-"))
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0", process, root
        except OSError:
            time.sleep(0.05)
    process.kill()
    return None


# --- the peer ----------------------------------------------------------------------------------------------

PEER_SCRIPT = r"""
import json, logging, statistics, sys, time, warnings
from datetime import timedelta
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

root = Path(sys.argv[1])
entities, reads, batch, repeat, floats, ints, strings = map(int, sys.argv[2:9])
cats = json.loads(sys.argv[9])
(root / "data").mkdir(parents=True, exist_ok=True)
(root / "feature_store.yaml").write_text(
    "project: bench\nregistry: data/registry.db\nprovider: local\n"
    "online_store:\n  type: sqlite\n  path: data/online.db\noffline_store:\n  type: duckdb\n"
    "entity_key_serialization_version: 3\n"
)
rng = np.random.default_rng(0)
now = pd.Timestamp("2026-09-21", tz="UTC")
frame = pd.DataFrame({"customer_id": np.arange(entities, dtype=np.int64), "event_timestamp": now, "created": now})
schema = []
for i in range(floats):
    frame[f"f{i}"] = rng.normal(size=entities); schema.append(Field(name=f"f{i}", dtype=Float64))
for i in range(ints):
    frame[f"i{i}"] = rng.integers(0, 1000, entities); schema.append(Field(name=f"i{i}", dtype=Int64))
for i in range(strings):
    frame[f"s{i}"] = rng.choice(cats, entities); schema.append(Field(name=f"s{i}", dtype=String))
frame.to_parquet(root / "data" / "stats.parquet")
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
source = FileSource(path=str(root / "data" / "stats.parquet"), timestamp_field="event_timestamp",
                    created_timestamp_column="created")
view = FeatureView(name="stats", entities=[customer], ttl=timedelta(days=3650), online=True, source=source,
                   schema=schema)
store = FeatureStore(repo_path=str(root))
store.apply([customer, view])
started = time.perf_counter()
store.write_to_online_store("stats", frame)
write = entities * len(schema) / (time.perf_counter() - started)

refs = [f"stats:{f.name}" for f in schema]
names = [f.name for f in schema]
online, config, fv = store._get_provider().online_store, store.config, store.get_feature_view("stats")
keys = [int(k) for k in rng.integers(0, entities, reads * batch)]
protos = [EntityKey(join_keys=["customer_id"], entity_values=[Value(int64_val=k)]) for k in keys]
assert store.get_online_features(features=refs, entity_rows=[{"customer_id": 1}]).to_dict()["f0"][0] is not None

def percentiles(call, n):
    times = []
    for j in range(n):
        started = time.perf_counter_ns(); call(j); times.append(time.perf_counter_ns() - started)
    times.sort()
    return times[len(times) // 2] / 1e3, times[min(len(times) - 1, int(len(times) * 0.99))] / 1e3

result = {"write": write, "write_values": entities * len(schema)}
for size, n in ((1, reads), (batch, max(reads // 20, 20))):
    full, level = [], []
    for _ in range(repeat):
        full.append(percentiles(lambda j: store.get_online_features(
            features=refs, entity_rows=[{"customer_id": k} for k in keys[j * size:(j + 1) * size]]).to_dict(), n))
        level.append(percentiles(lambda j: online.online_read(config, fv, protos[j * size:(j + 1) * size], names), n))
    label = "one" if size == 1 else "many"
    result["full_" + label] = [statistics.median(p[0] for p in full), statistics.median(p[1] for p in full)]
    result["store_" + label] = [statistics.median(p[0] for p in level), statistics.median(p[1] for p in level)]
print(json.dumps(result))
"""


def run_peer(args: argparse.Namespace) -> dict[str, Any] | None:
    python = PEERS / "feast" / "bin" / "python"
    if not python.exists():
        print(f"  (peer skipped: create it with  python3 -m venv {PEERS / 'feast'} && "
              f"{PEERS / 'feast'}/bin/pip install \"feast[duckdb]==0.67.0\" \"duckdb<2\")")  # fmt: skip
        return None
    WORK.mkdir(parents=True, exist_ok=True)
    script, repo = WORK / "peer_feast.py", WORK / "feast-repo"
    shutil.rmtree(repo, ignore_errors=True)
    script.write_text(PEER_SCRIPT)
    command = [str(python), str(script), str(repo), str(args.entities), str(args.peer_reads), str(args.batch),
               str(args.repeat), str(FLOATS), str(INTS), str(STRINGS), json.dumps(CATEGORIES)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    shutil.rmtree(repo, ignore_errors=True)
    if result.returncode != 0:
        print(f"  (peer failed: {result.stderr.strip()[-800:]})")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- report ------------------------------------------------------------------------------------------------


def line(
    name: str, figures: dict[str, Any] | None, one: str = "one", many: str = "many", write: str = "write"
) -> None:
    if figures is None:
        return
    w = f"{figures[write]:>12,.0f}" if figures.get(write) else f"{'':>12}"
    (p50, p99), (m50, m99) = figures[one], figures[many]
    print(f"{name:<48}{p50:>9.1f} {p99:>9.1f}   {m50:>10.1f} {m99:>10.1f}   {w}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=10_000, help="entities stored in the view read from")
    parser.add_argument(
        "--reads",
        type=int,
        default=20_000,
        help="1-entity reads per repetition (1/10 as many 100-entity reads)",
    )
    parser.add_argument("--batch", type=int, default=100, help="entities per batched read")
    parser.add_argument("--write-rows", type=int, default=100_000, help="rows per write batch (x 50 values)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--redis-url", help="an existing Redis database to use (it writes under mloop:*)")
    parser.add_argument("--no-peer", action="store_true", help="skip Feast")
    parser.add_argument(
        "--peer-reads", type=int, default=2_000, help="1-entity reads of the peer (1/20 as many batched)"
    )
    args = parser.parse_args()

    values = make_values(args.entities)
    keys = np.random.default_rng(1).integers(0, args.entities, args.reads * args.batch)
    print(f"data: {args.entities:,} entities x {len(values[0])} features ({FLOATS} float, {INTS} int, {STRINGS} string); "
          f"{args.reads:,} reads of 1 entity and {args.reads // 10:,} of {args.batch} per repetition; "
          f"writes of {args.write_rows:,} rows; medians of {args.repeat} repetitions")  # fmt: skip
    figures: dict[str, dict[str, Any] | None] = {}

    WORK.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="online-", dir=WORK))
    try:
        store = open_online_store(str(root / "online.db"))
        figures["sqlite"] = bench_store(store, values, keys, args)
        store.close()
        figures["sqlite_floor"] = bench_sqlite_floor(root / "online.db", values, keys, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    started = None if args.redis_url else start_redis()
    url = args.redis_url or (started[0] if started else None)
    try:
        import redis  # noqa: F401
    except ImportError:
        url = None
        print("  (redis skipped: pip install 'mloop[redis]')")
    if url is None and not args.redis_url:
        print("  (redis skipped: no redis-server binary; apt-get install redis-server, or pass --redis-url)")
    try:
        if url:
            store = open_online_store(url)
            figures["redis"] = bench_store(store, values, keys, args)
            figures["redis_floor"] = bench_redis_floor(url, values, keys, args)
            store.drop("stats")
            store.close()
    finally:
        if started:
            started[1].terminate()
            started[1].wait(10)
            shutil.rmtree(started[2], ignore_errors=True)

    peer = None if args.no_peer else run_peer(args)

    print(f"\n{'':<48}{'1 entity (us)':>19}   {f'{args.batch} entities (us)':>21}   {'write':>12}")
    print(f"{'':<48}{'p50':>9} {'p99':>9}   {'p50':>10} {'p99':>10}   {'values/s':>12}")
    line("mloop SqliteOnlineStore", figures["sqlite"])
    line("  floor: sqlite3 by primary key, no decoding", figures["sqlite_floor"])
    line("mloop RedisOnlineStore (loopback)", figures.get("redis"))
    line("  floor: redis-py GET / MGET, no decoding", figures.get("redis_floor"))
    if peer:
        line("Feast 0.67 SQLite online_read (store level)", peer, "store_one", "store_many")
        line("Feast 0.67 get_online_features (full path)", peer, "full_one", "full_many", "none")
        print(f"  (Feast: {args.peer_reads:,} reads of 1 entity and {max(args.peer_reads // 20, 20):,} of {args.batch}; "
              f"its write is write_to_online_store of a {peer['write_values']:,}-value DataFrame)")  # fmt: skip

    sq = figures["sqlite"]
    assert sq is not None
    print("\nratios (> 1: mloop is faster)")
    if peer:
        print(f"  Feast store level / mloop SQLite, p50  1 entity {peer['store_one'][0] / sq['one'][0]:6.1f}x   "
              f"{args.batch} entities {peer['store_many'][0] / sq['many'][0]:6.1f}x   write {sq['write'] / peer['write']:6.1f}x")  # fmt: skip
        print(f"  Feast full path / mloop SQLite store, p50 1 entity {peer['full_one'][0] / sq['one'][0]:6.1f}x   "
              f"{args.batch} entities {peer['full_many'][0] / sq['many'][0]:6.1f}x   (not like for like: Feast's whole lookup)")  # fmt: skip
    print("ratios to the floor (the price of decoding into rows; < 1 for writes: the price of encoding)")
    for name in ("sqlite", "redis"):
        ours, floor = figures.get(name), figures.get(name + "_floor")
        if ours and floor:
            print(f"  {name:<7} p50 1 entity {ours['one'][0] / floor['one'][0]:5.2f}x   {args.batch} entities "
                  f"{ours['many'][0] / floor['many'][0]:5.2f}x   write {ours['write'] / floor['write']:5.2f}x")  # fmt: skip
    goals = [f"SQLite p99 1 entity {sq['one'][1]:.0f} us (goal <= 200)"]
    if figures.get("redis"):
        goals.append(f"Redis p99 1 entity {figures['redis']['one'][1]:.0f} us (goal <= 1000)")  # type: ignore[index]
    goals.append(f"writes {sq['write'] / 1e6:.2f}M" + (f" / {figures['redis']['write'] / 1e6:.2f}M" if figures.get("redis") else "")  # type: ignore[index]
                 + " values/s (goal >= 1M)")  # fmt: skip
    print("goals: " + "; ".join(goals))
    print(f"(python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version})")


if __name__ == "__main__":
    main()
