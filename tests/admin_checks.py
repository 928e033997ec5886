"""Checks shared by every app's admin tests."""

from __future__ import annotations

from django.db import models
from django.test import Client
from django.urls import reverse


def admin_url(model: type[models.Model], view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def assert_admin_pages_open(client: Client, obj: models.Model, *, search_term: str) -> None:
    """Changelist, search (hit and miss), change and add pages all work for `obj`'s model."""
    model = type(obj)
    change_url = admin_url(model, "change", obj.pk)
    assert client.get(admin_url(model, "changelist")).status_code == 200
    found = client.get(admin_url(model, "changelist"), {"q": search_term})
    assert found.status_code == 200
    assert change_url in found.text
    assert change_url not in client.get(admin_url(model, "changelist"), {"q": "no-such-thing-anywhere"}).text
    assert client.get(change_url).status_code == 200
    assert client.get(admin_url(model, "add")).status_code == 200
