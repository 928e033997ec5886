"""layers_feature becomes a table partitioned by LIST (bucket); the existing table, its rows
untouched, becomes the shared partition layers_feature_b0 (bucket 0).

Why: a big import loads into a table of its own without indexes, builds them, then attaches
it (apps/layers/storage.py) — 4x faster than inserting into indexed layers_feature.

What PostgreSQL 15 requires of a partitioned table, and what changes here for it:
- no identity column: `id` takes its default from a plain sequence, still named
  layers_feature_id_seq and owned by layers_feature.id (pg_get_serial_sequence finds it);
- a primary key or unique index must include the partition key: PK (id, bucket), and
  external_id is unique per (layer, external_id, bucket) — per layer, since a layer has one bucket;
- no foreign key may reference it without such a key: comments 0003 dropped comment → feature.
The old table keeps its rows and its indexes except the two unique ones, rebuilt with bucket;
the parent's indexes and constraints carry the names Django knows, so later migrations find them.
"""

from __future__ import annotations

from django.db import migrations, models

# The parent's indexes (Django's names) and the shared partition's matching ones, which ATTACH
# adopts instead of building new ones.
_RENAMED_INDEXES = [
    ("feature_layer_id_idx", "layers_feature_b0_layer_id_id_idx"),
    ("feature_geom_3857_gist", "layers_feature_b0_geom_3857_idx"),
    ("layers_feature_geom_144a77d7_id", "layers_feature_b0_geom_idx"),
]

_FORWARD = """
-- The identity's sequence goes with the identity: keep its position for the plain one.
CREATE TEMP TABLE feature_next_id ON COMMIT DROP AS
    SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS next_id FROM layers_feature_id_seq;
ALTER TABLE layers_feature ALTER COLUMN id DROP IDENTITY;
-- A constant default: no table rewrite.
ALTER TABLE layers_feature ADD COLUMN bucket integer NOT NULL DEFAULT 0;
ALTER TABLE layers_feature RENAME TO layers_feature_b0;
{renames}
ALTER TABLE layers_feature_b0 DROP CONSTRAINT layers_feature_pkey;
ALTER TABLE layers_feature_b0 ADD CONSTRAINT layers_feature_b0_pkey PRIMARY KEY (id, bucket);
DROP INDEX feature_external_id_unique_per_layer;
CREATE UNIQUE INDEX layers_feature_b0_layer_id_external_id_bucket_idx
    ON layers_feature_b0 (layer_id, external_id, bucket) WHERE external_id IS NOT NULL;

-- The parent: same columns, defaults, generated column and CHECK constraints (same names,
-- which is how ATTACH matches them), then keys and indexes while it has no partition (instant).
CREATE TABLE layers_feature (LIKE layers_feature_b0 INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)
    PARTITION BY LIST (bucket);
CREATE SEQUENCE layers_feature_id_seq OWNED BY layers_feature.id;
SELECT setval('layers_feature_id_seq', next_id, false) FROM feature_next_id;
ALTER TABLE layers_feature ALTER COLUMN id SET DEFAULT nextval('layers_feature_id_seq'::regclass);
ALTER TABLE layers_feature ADD CONSTRAINT layers_feature_pkey PRIMARY KEY (id, bucket);
CREATE UNIQUE INDEX feature_external_id_unique_per_layer
    ON layers_feature (layer_id, external_id, bucket) WHERE external_id IS NOT NULL;
CREATE INDEX feature_layer_id_idx ON layers_feature (layer_id, id);
CREATE INDEX feature_geom_3857_gist ON layers_feature USING gist (geom_3857);
CREATE INDEX layers_feature_geom_144a77d7_id ON layers_feature USING gist (geom);
ALTER TABLE layers_feature ADD CONSTRAINT layers_feature_layer_id_same_workspace_fk
    FOREIGN KEY (layer_id, workspace_id) REFERENCES layers_layer (id, workspace_id)
    ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
-- Adopts the old table's indexes and foreign key; checks bucket = 0 with one scan.
ALTER TABLE layers_feature ATTACH PARTITION layers_feature_b0 FOR VALUES IN (0);

-- Buckets of layers with a partition of their own.
CREATE SEQUENCE layers_storage_bucket_seq START 1;
"""

_BACKWARD = """
-- The moved rows' deferred foreign-key checks run now: ALTER TABLE refuses pending trigger events.
SET CONSTRAINTS ALL IMMEDIATE;
DROP SEQUENCE layers_storage_bucket_seq;
-- Every other partition's rows move back into the shared one.
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN
        SELECT inhrelid::regclass FROM pg_inherits
        WHERE inhparent = 'layers_feature'::regclass AND inhrelid <> 'layers_feature_b0'::regclass
    LOOP
        EXECUTE format('ALTER TABLE layers_feature DETACH PARTITION %s', part);
        EXECUTE format(
            'INSERT INTO layers_feature_b0 (created_at, updated_at, id, geom, properties, version, external_id,'
            ' created_by_id, updated_by_id, workspace_id, layer_id, bucket)'
            ' SELECT created_at, updated_at, id, geom, properties, version, external_id,'
            ' created_by_id, updated_by_id, workspace_id, layer_id, 0 FROM %s', part);
        EXECUTE format('DROP TABLE %s', part);
    END LOOP;
END $$;
CREATE TEMP TABLE feature_next_id ON COMMIT DROP AS
    SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS next_id FROM layers_feature_id_seq;
ALTER TABLE layers_feature DETACH PARTITION layers_feature_b0;
DROP TABLE layers_feature;  -- and its sequence
ALTER TABLE layers_feature_b0 RENAME TO layers_feature;
{renames}
ALTER TABLE layers_feature DROP CONSTRAINT layers_feature_b0_pkey;
ALTER TABLE layers_feature ADD CONSTRAINT layers_feature_pkey PRIMARY KEY (id);
DROP INDEX layers_feature_b0_layer_id_external_id_bucket_idx;
CREATE UNIQUE INDEX feature_external_id_unique_per_layer
    ON layers_feature (layer_id, external_id) WHERE external_id IS NOT NULL;
ALTER TABLE layers_feature DROP COLUMN bucket;
ALTER TABLE layers_feature ALTER COLUMN id DROP DEFAULT;
ALTER TABLE layers_feature ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
SELECT setval(pg_get_serial_sequence('layers_feature', 'id'), next_id, false) FROM feature_next_id;
"""


def _renames(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f"ALTER INDEX {old} RENAME TO {new};" for old, new in pairs)


class Migration(migrations.Migration):
    dependencies = [
        ("layers", "0004_feature_audit_columns_without_keys"),
        # comment → feature loses its key first: it depends on the old primary key.
        ("comments", "0003_feature_pin_without_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    _FORWARD.format(renames=_renames(_RENAMED_INDEXES)),
                    _BACKWARD.format(renames=_renames([(new, old) for old, new in _RENAMED_INDEXES])),
                ),
            ],
            state_operations=[
                migrations.RemoveConstraint(model_name="feature", name="feature_external_id_unique_per_layer"),
                migrations.AddField(
                    model_name="feature", name="bucket", field=models.IntegerField(db_default=0, editable=False)
                ),
                migrations.AddConstraint(
                    model_name="feature",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("external_id__isnull", False)),
                        fields=("layer", "external_id", "bucket"),
                        name="feature_external_id_unique_per_layer",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="layer",
            name="storage_bucket",
            field=models.IntegerField(db_default=0, default=0, editable=False),
        ),
    ]
