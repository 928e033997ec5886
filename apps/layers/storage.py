"""Where a layer's features are stored: layers_feature's partitions (migration 0005).

layers_feature is partitioned by LIST (bucket). Bucket 0, layers_feature_b0, holds every
ordinary layer's features. A big import's new layer gets a bucket of its own
(Layer.storage_bucket): its rows go into a new standalone table without indexes, which is
then indexed and attached as a partition, all in the import's transaction — 4x faster than
inserting a million rows into indexed layers_feature, and a rolled-back import leaves no
table behind (CREATE TABLE is transactional).

Locks (PostgreSQL 15, checked in pg_locks):
- ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on layers_feature (ALTER TABLE docs), so other
  sessions keep reading and writing every layer; it conflicts only with DDL, VACUUM and ANALYZE
  of the parent. But cloning the (layer_id, workspace_id) foreign key onto the partition also
  takes SHARE ROW EXCLUSIVE on layers_layer until commit, which holds back writes to layers_layer
  (layer edits, data_version bumps) for the attach's last moments (validating the key: one join
  over the rows), and would deadlock two big imports that each inserted a layer row first — so
  big loads take `big_load_lock` before their layer row.
- Dropping an attached partition takes ACCESS EXCLUSIVE on layers_feature (DDL docs), which stops
  every tile and feature read. So a deleted layer's partition is detached CONCURRENTLY (SHARE UPDATE
  EXCLUSIVE; outside any transaction block) and then dropped as a plain table. That drop removes
  the key's triggers on layers_layer, which takes ACCESS EXCLUSIVE on layers_layer for an instant:
  it runs with a short lock_timeout and is retried later rather than queue every request behind it.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import connection, transaction

SHARED_BUCKET = 0
PARENT = "layers_feature"
_NAME = re.compile(r"^layers_feature_b([0-9]+)$")
# An index of the parent as pg_get_indexdef prints it, minus its name and table.
_INDEX_DEFINITION = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .+)$")

# Index builds of a million rows: GiST's sorted build and the btrees' sorts stay in memory.
_BUILD_MEMORY_SQL = "SET LOCAL maintenance_work_mem = '256MB'"
# pg_advisory_xact_lock key: one big load (create, load, attach) at a time, see the docstring.
_BIG_LOAD_LOCK_KEY = 7_461_101
# How long the final DROP may wait for its instant of ACCESS EXCLUSIVE on layers_layer.
_DROP_LOCK_TIMEOUT = "200ms"


def partition_name(bucket: int) -> str:
    """The table of a bucket: a plain identifier (an integer, never user input)."""
    return f"{PARENT}_b{int(bucket)}"


def big_load_lock() -> None:
    """Wait for any other big load to commit; held until this transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_BIG_LOAD_LOCK_KEY])


def bucket_allocate() -> int:
    """A bucket number nobody used before (a rolled-back import's number is never reused)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('layers_storage_bucket_seq')")
        return int(cursor.fetchone()[0])


def partition_create(bucket: int) -> str:
    """A standalone table shaped like layers_feature (columns, defaults, generated column, CHECKs),
    without indexes, for a bulk load. The CHECK on bucket lets ATTACH skip its validating scan."""
    table = partition_name(bucket)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED,"
            f" CONSTRAINT {table}_bucket CHECK (bucket IS NOT NULL AND bucket = {int(bucket)}))"
        )
    return table


def _index_statements(table: str) -> list[str]:
    """The parent's indexes, for `table`: ATTACH adopts an equivalent index instead of building one.
    The primary key is added as a constraint, because only a constraint index matches the parent's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisprimary, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
            [PARENT],
        )
        rows = cursor.fetchall()
    statements = []
    for primary, definition in rows:
        if primary:
            columns = definition[definition.index("(") :]
            statements.append(f"ALTER TABLE {table} ADD PRIMARY KEY {columns}")
            continue
        match = _INDEX_DEFINITION.match(definition)
        if match is None:
            raise RuntimeError(f"Unexpected index definition on {PARENT}: {definition}")
        statements.append(f"CREATE {match.group(1) or ''}INDEX ON {table} {match.group(2)}")
    return statements


def partition_attach(bucket: int) -> None:
    """Index the loaded table like every partition, then attach it for its bucket.

    Must run in the transaction that created and loaded the table: until commit no other
    session sees it, and a rollback removes it.
    """
    table = partition_name(bucket)
    with connection.cursor() as cursor:
        cursor.execute(_BUILD_MEMORY_SQL)
        for statement in _index_statements(table):
            cursor.execute(statement)
        # Adopts the indexes above and validates the layer foreign key (one join over the rows).
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {table} FOR VALUES IN ({int(bucket)})")


# Comments pinned to the features stay on their map or layer, unpinned (as loading.py does).
_UNPIN_COMMENTS_SQL = """
UPDATE comments_comment c SET feature_id = NULL
FROM layers_feature f
WHERE c.feature_id IS NOT NULL AND c.feature_id = f.id AND f.bucket = ANY(%s)
"""


def own_buckets_empty(buckets: list[int]) -> None:
    """Delete the features of layers about to be deleted that have a partition of their own.

    In SQL, before the ORM deletes the layers: its cascade would load every feature first.
    The emptied partitions are dropped after the commit (`unused_partitions_drop`).
    """
    buckets = [int(b) for b in buckets if b != SHARED_BUCKET]
    if not buckets:
        return
    with connection.cursor() as cursor:
        cursor.execute(_UNPIN_COMMENTS_SQL, [buckets])
        cursor.execute("DELETE FROM layers_feature WHERE bucket = ANY(%s)", [buckets])


def partitions() -> dict[int, str]:
    """Every partition of layers_feature by bucket (tests; an operator's check)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass", [PARENT])
        names = [name for (name,) in cursor.fetchall()]
    return {int(match.group(1)): name for name in names if (match := _NAME.match(name))}


# Bucket tables no layer holds (its layer was deleted), attached, detached or left half-detached
# by an interrupted detach. The shared partition is never unused; an import's table being loaded
# is invisible here until the commit that also creates its layer.
_UNUSED_SQL = """
SELECT c.relname, i.inhrelid IS NOT NULL, coalesce(i.inhdetachpending, false)
FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'layers_feature'::regclass
WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND c.relname ~ '^layers_feature_b[0-9]+$'
  AND substring(c.relname from 17)::int <> 0
  AND NOT EXISTS (SELECT 1 FROM layers_layer l WHERE l.storage_bucket = substring(c.relname from 17)::int)
ORDER BY 1
"""


def stray_partition_tables() -> list[str]:
    """Bucket tables no layer holds (tests' "nothing left behind"; an operator's check)."""
    with connection.cursor() as cursor:
        cursor.execute(_UNUSED_SQL)
        return [name for name, _, _ in cursor.fetchall()]


def unused_partitions_drop() -> list[str]:
    """Detach (CONCURRENTLY) and drop the partitions of deleted layers; returns their names.

    Must run outside a transaction block (DETACH … CONCURRENTLY cannot run inside one).
    Idempotent: a rerun finds nothing, or finishes a detach an earlier run left pending.
    """
    if connection.in_atomic_block:
        raise RuntimeError("unused_partitions_drop must run outside a transaction block")
    with connection.cursor() as cursor:
        cursor.execute(_UNUSED_SQL)
        unused = cursor.fetchall()
        for table, attached, pending in unused:
            if attached:
                mode = "FINALIZE" if pending else "CONCURRENTLY"
                cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {table} {mode}")
            _drop_detached(cursor, table)
    return [table for table, _, _ in unused]


def _drop_detached(cursor: Any, table: str) -> None:
    """A lock timeout fails the drop (the task retries later) instead of queueing requests behind it."""
    cursor.execute(f"SET lock_timeout = '{_DROP_LOCK_TIMEOUT}'")
    try:
        cursor.execute(f"DROP TABLE {table}")
    finally:
        cursor.execute("RESET lock_timeout")


def unused_partitions_drop_later() -> None:
    """After the commit that deleted layers with partitions of their own: drop those (a Celery task,
    because DETACH … CONCURRENTLY waits for every transaction that may still see the partition)."""
    from apps.layers.tasks import unused_partitions_drop_run

    transaction.on_commit(unused_partitions_drop_run.delay)
