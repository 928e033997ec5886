"""The project's Celery app for worker subprocesses in tests, redelivering unacked tasks after 3 s.

Production keeps the 2 h visibility timeout (config/settings/base.py); the SIGKILL test
cannot wait that long for the broker to hand a dead worker's task to the next one.
"""

from __future__ import annotations

from celery_app import app

app.conf.broker_transport_options = {**app.conf.broker_transport_options, "visibility_timeout": 3}

__all__ = ["app"]
