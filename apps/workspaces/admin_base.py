"""Base classes for the admin console (/admin/): staff see and edit every workspace.

Why this exists: the default manager of a tenant-owned model (`WorkspaceOwned.objects`)
raises outside a workspace scope (tenancy.py). Django's admin reaches for the default
manager in many places we never call ourselves — the changelist, form validation
(`validate_unique` / `validate_constraints`), foreign-key widgets, inlines, the delete
confirmation — and it renders templates lazily, *after* the view has returned, where
widgets query again. The admin is a staff tool that must see across tenants, so every
admin URL runs, rendering included, inside `all_workspaces_scope()`.

What keeps that safe: only active staff reach these views (`AdminSite.admin_view`), and
`WorkspaceOwnedForm` refuses to point a row at another workspace's rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cached_property, wraps
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.gis.admin.options import GeoModelAdminMixin
from django.contrib.gis.forms import OSMWidget
from django.core.paginator import Paginator
from django.db import connection, models
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse
from django.urls import URLPattern, URLResolver
from django.utils.html import format_html

from apps.workspaces.models import Workspace, WorkspaceOwned
from apps.workspaces.tenancy import all_workspaces_scope

# Shown, never edited: set by the system (timestamps, counters, versions, tokens) or
# recording who did something. Each admin gets those its model has.
AUDIT_FIELDS = (
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "author",
    "invited_by",
    "invited_at",
    "accepted_at",
    "accepted_by",
    "responded_at",
    "resolved_by",
    "resolved_at",
    "edited_at",
    "version",
    "data_version",
    "feature_count",
    "attribute_schema",
    "seq",
    "last_event_seq",
    "share_token",
    "key_prefix",
    "last_used_at",
    "last_login",
    "date_joined",
)
# Set to the signed-in staff member when the admin creates a row / saves one.
USER_FIELDS_ON_ADD = ("created_by", "invited_by", "author")
USER_FIELDS_ON_SAVE = ("updated_by",)


# --- running every admin view across all workspaces --------------------------------


def cross_tenant_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Run an admin view, and the rendering of its template, inside `all_workspaces_scope()`."""

    @wraps(view)
    def scoped_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with all_workspaces_scope():
            response = view(request, *args, **kwargs)
            # Render now: a TemplateResponse is otherwise rendered by the handler after
            # we return — outside the scope — and its widgets still query.
            if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                response.render()
        return response

    return scoped_view


def _scoped_urls(urls: Sequence[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    return [
        URLPattern(url.pattern, cross_tenant_view(url.callback), url.default_args, url.name)
        if isinstance(url, URLPattern)
        else url
        for url in urls
    ]


class CrossTenantAdminMixin:
    """Every URL of this ModelAdmin (changelist, add, change, delete, history, custom views) sees every tenant."""

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return _scoped_urls(super().get_urls())  # type: ignore[misc]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Also reached from AdminSite.autocomplete_view, which is not ours to wrap. The
        # scoped manager checks the scope when the queryset is built, not when it runs.
        with all_workspaces_scope():
            return super().get_queryset(request)  # type: ignore[misc]


# --- audit fields, JSON and the shared ModelAdmin ----------------------------------


class PrettyJSONField(forms.JSONField):
    """JSON indented for people; Django's default is a single line."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


JSON_FIELD_OVERRIDES = {
    models.JSONField: {
        "form_class": PrettyJSONField,
        "widget": forms.Textarea(attrs={"rows": 10, "class": "vLargeTextField", "style": "font-family: monospace"}),
    }
}


def json_block(value: Any) -> str:
    """Read-only JSON, indented, for display methods."""
    return format_html("<pre style='margin: 0'>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


class AuditFieldsMixin:
    """Audit fields are read-only, shown (folded) on change pages only; user stamps are set on save."""

    audit_fieldset = True  # inlines show only the columns they list

    def _audit_fields(self) -> list[str]:
        names = {field.name for field in self.opts.get_fields()}  # type: ignore[attr-defined]
        return [name for name in AUDIT_FIELDS if name in names]

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Sequence[str]:
        declared = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return [*declared, *(name for name in self._audit_fields() if name not in declared)]

    def _readonly_audit_fields(self, request: HttpRequest, obj: models.Model | None) -> list[str]:
        audit = self._audit_fields()  # an admin may drop one it shows its own way
        return [name for name in self.get_readonly_fields(request, obj) if name in audit]

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Sequence[str]:
        fields = super().get_fields(request, obj)  # type: ignore[misc]
        if obj is None:  # nothing to show yet
            return _without(fields, self._readonly_audit_fields(request, obj))
        return fields

    def get_fieldsets(self, request: HttpRequest, obj: models.Model | None = None) -> list[tuple[Any, dict[str, Any]]]:
        fieldsets = list(super().get_fieldsets(request, obj))  # type: ignore[misc]
        audit = self._readonly_audit_fields(request, obj)
        if obj is None:
            return [(title, {**options, "fields": _without(options["fields"], audit)}) for title, options in fieldsets]
        shown = set(flatten_fieldsets(fieldsets))
        missing = [name for name in audit if name not in shown]
        if missing and self.audit_fieldset:
            fieldsets.append(("Audit", {"fields": missing, "classes": ("collapse",)}))
        return fieldsets

    def save_model(self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool) -> None:
        stamp_user_fields(obj, request.user, adding=not change)
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for obj in instances:
            stamp_user_fields(obj, request.user, adding=obj._state.adding)
            obj.save()
        formset.save_m2m()


def _without(fields: Sequence[Any], names: Sequence[str]) -> list[Any]:
    """A fieldset's fields minus `names`; a tuple of fields shares one line."""
    kept = []
    for field in fields:
        if isinstance(field, (list, tuple)):
            line = [name for name in field if name not in names]
            if line:
                kept.append(tuple(line))
        elif field not in names:
            kept.append(field)
    return kept


def stamp_user_fields(obj: models.Model, user: Any, *, adding: bool) -> None:
    names = {field.name for field in obj._meta.concrete_fields}
    for name in USER_FIELDS_ON_ADD if adding else ():
        if name in names and getattr(obj, f"{name}_id") is None:
            setattr(obj, name, user)
    for name in USER_FIELDS_ON_SAVE:
        if name in names:
            setattr(obj, name, user)


class MeridianModelAdmin(CrossTenantAdminMixin, AuditFieldsMixin, admin.ModelAdmin):
    """The base of every admin in the project."""

    formfield_overrides = JSON_FIELD_OVERRIDES


class MeridianTabularInline(AuditFieldsMixin, admin.TabularInline):
    """Inlines run inside their parent's (cross-tenant) view; only the queryset needs the scope."""

    formfield_overrides = JSON_FIELD_OVERRIDES
    audit_fieldset = False
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        with all_workspaces_scope():
            return super().get_queryset(request)


# --- large tables ----------------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered changelist of a huge table from the planner's statistics.

    `count(*)` over millions of features takes seconds on every page view; filtered
    lists (a layer, a search) are counted exactly.
    """

    exact_below = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            estimate = _planner_row_estimate(queryset.model._meta.db_table)
            if estimate >= self.exact_below:
                return estimate
        return super().count


def _planner_row_estimate(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row and row[0] is not None else 0  # -1: never analysed


# --- tenant-owned models ---------------------------------------------------------


class WorkspaceListFilter(admin.RelatedFieldListFilter):
    """The workspace filter while there are few; past that, filter from a workspace's page."""

    max_choices = 100

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        workspaces = Workspace.objects.order_by("name").values_list("pk", "name")
        choices = list(workspaces[: self.max_choices + 1])
        if len(choices) > self.max_choices:
            return list(workspaces.filter(pk__in=self.lookup_val or []))
        return choices


class WorkspaceOwnedForm(forms.ModelForm):
    """Keeps a row inside one tenant.

    A new row takes its workspace from the chooser (where the admin offers one) or from
    the tenant-owned rows it points to (a map layer from its map). Whichever way, every
    tenant-owned row it points to must live in that same workspace: the admin lists all
    tenants, so it could otherwise join a map to another customer's layer.
    """

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        related = {name: value for name, value in cleaned.items() if isinstance(value, WorkspaceOwned)}
        chosen = cleaned.get("workspace")
        workspace_id = (
            self.instance.workspace_id
            or getattr(chosen, "pk", None)
            or next((value.workspace_id for value in related.values()), None)
        )
        if workspace_id is None:
            self.add_error("workspace" if "workspace" in self.fields else None, "Choose a workspace.")
            return cleaned
        self.instance.workspace_id = workspace_id
        for name, value in related.items():
            if value.workspace_id != workspace_id:
                self.add_error(name, "This belongs to another workspace.")
        return cleaned


class WorkspaceOwnedAdmin(MeridianModelAdmin):
    """A tenant-owned model. `workspace` is chosen once, on add, and read-only after.

    `choose_workspace_on_add`: the add form offers a workspace (for rows that do not
    take it from a parent, such as a map); otherwise it comes from the rows pointed to.
    """

    form = WorkspaceOwnedForm
    choose_workspace_on_add = False

    def get_exclude(self, request: HttpRequest, obj: models.Model | None = None) -> Sequence[str]:
        # The model field is not editable; the add form declares its own chooser.
        return [*(super().get_exclude(request, obj) or ()), "workspace"]

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Sequence[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return ["workspace", *fields] if obj is not None else fields

    def get_fieldsets(self, request: HttpRequest, obj: models.Model | None = None) -> list[tuple[Any, dict[str, Any]]]:
        fieldsets = super().get_fieldsets(request, obj)
        wants_workspace = obj is not None or self.choose_workspace_on_add
        if not wants_workspace or "workspace" in flatten_fieldsets(fieldsets):
            return fieldsets
        (title, options), *rest = fieldsets
        return [(title, {**options, "fields": ["workspace", *options["fields"]]}), *rest]

    def get_form(
        self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None and self.choose_workspace_on_add:
            chooser = forms.ModelChoiceField(
                queryset=Workspace.objects.all(),
                required=False,
                widget=AutocompleteSelect(self.opts.get_field("workspace"), self.admin_site),
            )
            kwargs.setdefault("form", type(self.form.__name__, (self.form,), {"workspace": chooser}))
        return super().get_form(request, obj, change, **kwargs)


class WorkspaceOwnedTabularInline(MeridianTabularInline):
    """An inline of tenant-owned rows; new rows take the parent's workspace."""

    form = WorkspaceOwnedForm


# --- maps in the admin, without a CDN --------------------------------------------


class OfflineOSMWidget(OSMWidget):
    """Django's OpenLayers widget with OpenLayers served from our own static files.

    compose/local/vendor-assets.sh copies them from npm into static/vendor/ol/.
    The base layer stays OpenStreetMap: with network the map has tiles; offline the
    geometry still draws, and can be edited, on a blank background.
    """

    default_lon = 0
    default_lat = 20
    default_zoom = 2

    class Media:
        extend = False
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js")


class _ShowsStoredGeometries(forms.ModelForm):
    map_only_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.map_only_fields:
            self.initial.setdefault(name, getattr(self.instance, name))


class GISAdminMixin(GeoModelAdminMixin):
    """Map widgets for geometry fields.

    `map_only_fields`: non-editable geometries (a layer's extent) drawn on a map as
    disabled fields, so whatever is posted for them is ignored.
    """

    gis_widget = OfflineOSMWidget
    map_only_fields: tuple[str, ...] = ()

    def get_exclude(self, request: HttpRequest, obj: models.Model | None = None) -> Sequence[str]:
        return [*(super().get_exclude(request, obj) or ()), *self.map_only_fields]  # type: ignore[misc]

    def get_form(
        self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        if not self.map_only_fields:
            return form
        fields = {
            name: self.opts.get_field(name).formfield(  # type: ignore[attr-defined]
                widget=self.gis_widget(**self.gis_widget_kwargs), disabled=True, required=False
            )
            for name in self.map_only_fields
        }
        attrs = {**fields, "map_only_fields": self.map_only_fields}
        return type(form.__name__, (_ShowsStoredGeometries, form), attrs)


class WorkspaceOwnedGISAdmin(GISAdminMixin, WorkspaceOwnedAdmin):
    """A tenant-owned model with geometry fields."""


class LargeTableChangeList(ChangeList):
    """A changelist that never loads the columns it does not show (geometries, JSON)."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer(*self.model_admin.list_deferred_fields)
