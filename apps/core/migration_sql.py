"""SQL helpers for migrations: constraints Django's ORM cannot express."""

from __future__ import annotations

from django.db import migrations


def tenant_foreign_key(table: str, column: str, target: str) -> migrations.RunSQL:
    """(column, workspace_id) → target(id, workspace_id): a row can never point into another tenant.

    Needs the target's UNIQUE (id, workspace_id); it is also the shape Citus
    requires to colocate tables distributed by workspace_id.
    """
    name = f"{table}_{column}_same_workspace_fk"
    return migrations.RunSQL(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}, workspace_id) "
        f"REFERENCES {target} (id, workspace_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
        f"ALTER TABLE {table} DROP CONSTRAINT {name}",
    )
