"""GDAL's connection string for our own database, shared by every ogr2ogr caller."""

from __future__ import annotations

from django.db import connection


def _conninfo_value(value: object) -> str:
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def pg_datasource(app_name: str) -> tuple[str, dict[str, str]]:
    """GDAL's PG: connection string for our database, and the environment carrying the password.

    The password goes through PGPASSWORD so it never shows in the process list;
    `app_name` labels the session in pg_stat_activity.
    """
    db = connection.settings_dict
    parts = {"dbname": db["NAME"], "host": db.get("HOST"), "port": db.get("PORT"), "user": db.get("USER")}
    conninfo = " ".join(f"{key}={_conninfo_value(value)}" for key, value in parts.items() if value)
    env = {"PGAPPNAME": app_name}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return f"PG:{conninfo}", env
