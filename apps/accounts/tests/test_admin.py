"""The admin console for users (email login) and API tokens."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.contrib.messages import get_messages
from django.db import models
from django.test import Client

from apps.accounts.models import ApiToken, User, hash_token
from apps.accounts.services import api_token_create
from tests.admin_checks import admin_url, assert_admin_pages_open
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member() -> User:
    return UserFactory(email="ada@example.test", name="Ada Lovelace")


@pytest.fixture
def token(member: User) -> tuple[ApiToken, str]:
    return api_token_create(user=member, name="nightly scraper")


@pytest.mark.parametrize(("model", "term"), [(User, "lovelace"), (ApiToken, "scraper")])
def test_changelist_search_change_and_add_pages_open(
    admin_client: Client, token: tuple[ApiToken, str], model: type[models.Model], term: str
) -> None:
    obj = token[0] if model is ApiToken else token[0].user
    assert_admin_pages_open(admin_client, obj, search_term=term)


def test_user_added_with_email_and_password_can_log_in(admin_client: Client) -> None:
    response = admin_client.post(
        admin_url(User, "add"),
        {
            "email": "Grace@Example.TEST",
            "name": "Grace",
            "usable_password": "true",
            "password1": "a-long-harbour-phrase",
            "password2": "a-long-harbour-phrase",
        },
    )

    assert response.status_code == 302
    user = User.objects.get(email="grace@example.test")
    assert authenticate(email="grace@example.test", password="a-long-harbour-phrase") == user


def test_user_with_an_existing_email_in_another_case_is_refused(admin_client: Client, member: User) -> None:
    response = admin_client.post(
        admin_url(User, "add"),
        {"email": "ADA@example.test", "usable_password": "false", "password1": "", "password2": ""},
    )

    assert response.status_code == 200
    assert "already exists" in response.text
    assert User.objects.filter(email__iexact="ada@example.test").count() == 1


def test_user_page_shows_workspaces_and_token_prefixes(admin_client: Client, token: tuple[ApiToken, str]) -> None:
    api_token, key = token

    page = admin_client.get(admin_url(User, "change", api_token.user.pk)).text

    assert api_token.key_prefix in page
    assert key not in page
    assert api_token.key_hash not in page


def test_token_page_never_shows_the_key_or_its_hash(admin_client: Client, token: tuple[ApiToken, str]) -> None:
    api_token, key = token

    page = admin_client.get(admin_url(ApiToken, "change", api_token.pk)).text

    assert api_token.key_prefix in page
    assert key not in page
    assert api_token.key_hash not in page
    assert 'name="key_hash"' not in page


def test_token_added_in_the_admin_shows_its_key_once_and_stores_its_hash(admin_client: Client, member: User) -> None:
    response = admin_client.post(admin_url(ApiToken, "add"), {"user": member.pk, "name": "ci"}, follow=True)

    [message] = [str(m) for m in get_messages(response.wsgi_request) if "new key" in str(m)]
    key = message.split("The new key is ")[1].split(" ")[0]
    stored = ApiToken.objects.get(user=member, name="ci")
    assert stored.key_hash == hash_token(key)
    assert stored.key_prefix == key[:8]
    assert key not in admin_client.get(admin_url(ApiToken, "change", stored.pk)).text


def test_expire_action_makes_a_token_unusable(admin_client: Client, token: tuple[ApiToken, str]) -> None:
    api_token, key = token

    admin_client.post(admin_url(ApiToken, "changelist"), {"action": "expire_now", "_selected_action": [api_token.pk]})

    api_token.refresh_from_db()
    assert api_token.is_expired
    assert Client().get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
