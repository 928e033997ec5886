from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import ApiToken, User, hash_token
from apps.workspaces.admin_base import (
    AuditFieldsMixin,
    CrossTenantAdminMixin,
    MeridianModelAdmin,
    MeridianTabularInline,
)
from apps.workspaces.models import Membership


class EmailUserCreationForm(AdminUserCreationForm):
    """Django's add-user form (password or none), keyed on the email address."""

    class Meta:
        model = User
        fields = ("email", "name")

    def clean_email(self) -> str:
        # Stored lower-cased, like UserManager does; unique regardless of case.
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email address already exists.")
        return email


class EmailUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipOfUserInline(MeridianTabularInline):
    model = Membership
    fk_name = "user"
    fields = ("workspace", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("workspace",)
    verbose_name_plural = "workspaces"


class ApiTokenOfUserInline(MeridianTabularInline):
    """The user's tokens at a glance; deleting one here revokes it."""

    model = ApiToken
    fields = ("name", "key_prefix", "created_at", "last_used_at", "expires_at")
    readonly_fields = fields
    can_delete = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a key is created on the API token page, where it is shown once


@admin.register(User)
class UserAdmin(CrossTenantAdminMixin, AuditFieldsMixin, DjangoUserAdmin):
    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "usable_password", "password1", "password2")}),
    )
    list_display = ("email", "name", "is_active", "is_staff", "is_superuser", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups", "date_joined")
    search_fields = ("email", "name")
    ordering = ("email",)
    inlines = (MembershipOfUserInline, ApiTokenOfUserInline)

    def get_inlines(self, request: HttpRequest, obj: User | None) -> tuple[type[admin.TabularInline], ...]:
        return self.inlines if obj is not None else ()  # adding is email and password only, as in Django


@admin.register(ApiToken)
class ApiTokenAdmin(MeridianModelAdmin):
    """Only a key's prefix is ever shown; the key itself is shown once, when it is created here."""

    list_display = ("name", "user", "key_prefix", "created_at", "last_used_at", "expires_at", "is_active")
    list_filter = ("created_at", "last_used_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("name", "=key_prefix", "user__email")
    autocomplete_fields = ("user",)
    fieldsets = ((None, {"fields": ("user", "name", "key_prefix", "expires_at", "last_used_at")}),)
    actions = ("expire_now",)

    @admin.display(boolean=True, description="active")
    def is_active(self, token: ApiToken) -> bool:
        return not token.is_expired

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "user"] if obj is not None else fields  # a token never changes hands

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key = ApiToken.generate_key()  # the recipe of accounts.services.api_token_create
        obj.key_hash, obj.key_prefix = hash_token(key), key[:8]
        super().save_model(request, obj, form, change)
        messages.warning(request, f"The new key is {key} — copy it now: only its hash is stored.")

    @admin.action(description="Expire selected tokens now")
    def expire_now(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        now = timezone.now()
        expired = queryset.exclude(expires_at__lte=now).update(expires_at=now, updated_at=now)
        self.message_user(request, f"{expired} token(s) expired.")
