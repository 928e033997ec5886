from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_token_create
from conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _link(body: str) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", body).group(1)


def test_sign_up_requires_email_verification_then_logs_in_with_email() -> None:
    browser = Client()
    response = browser.post(
        "/accounts/signup/",
        {"email": "Ada@Example.test", "password1": "correct horse battery", "password2": "correct horse battery"},
    )
    assert response.status_code == 302
    assert User.objects.get(email="ada@example.test")
    assert len(mail.outbox) == 1 and "confirm" in mail.outbox[0].subject.lower()

    login = browser.post("/accounts/login/", {"login": "ada@example.test", "password": "correct horse battery"})
    assert login.status_code == 302 and "confirm-email" in login["Location"]  # not verified yet
    assert Client().get("/api/v1/me/").status_code in (401, 403)

    confirm_url = _link(mail.outbox[-1].body)
    assert browser.post(confirm_url).status_code == 302
    browser = Client()
    login = browser.post("/accounts/login/", {"login": "ada@example.test", "password": "correct horse battery"})
    assert login.status_code == 302
    assert browser.get("/api/v1/me/").json()["email"] == "ada@example.test"


def test_password_reset_sends_a_link_that_sets_a_new_password() -> None:
    user = UserFactory(email="grace@example.test")
    browser = Client()
    assert browser.post("/accounts/password/reset/", {"email": "grace@example.test"}).status_code == 302
    reset_url = _link(mail.outbox[-1].body)
    form_url = browser.get(reset_url)["Location"]
    done = browser.post(form_url, {"password1": "a brand new secret 42", "password2": "a brand new secret 42"})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new secret 42")


def test_an_api_token_is_shown_once_works_as_a_header_and_stops_working_when_deleted() -> None:
    user = UserFactory()
    created = client_for(user).post("/api/v1/me/tokens/", {"name": "nightly import"}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("mrd_")
    token = ApiToken.objects.get(pk=created.json()["id"])
    assert key not in (token.key_hash, token.key_prefix)  # only a hash is stored
    assert "key" not in client_for(user).get("/api/v1/me/tokens/").json()["results"][0]

    script = APIClient()
    assert script.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}").json()["email"] == user.email
    assert script.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert client_for(user).delete(f"/api/v1/me/tokens/{token.pk}/").status_code == 204
    refused = script.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")
    assert refused.status_code == 401 and "Invalid" in refused.json()["detail"]


def test_expired_tokens_and_inactive_users_are_refused() -> None:
    user = UserFactory()
    token, key = api_token_create(user=user, name="short-lived", expires_at=timezone.now() + timedelta(seconds=60))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    _, key = api_token_create(user=user, name="fresh")
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


def test_one_user_cannot_see_or_delete_another_users_tokens() -> None:
    alice, bob = UserFactory(), UserFactory()
    token, _ = api_token_create(user=alice, name="alice's")
    assert client_for(bob).get("/api/v1/me/tokens/").json()["results"] == []
    assert client_for(bob).delete(f"/api/v1/me/tokens/{token.pk}/").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()
