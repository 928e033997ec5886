"""factory_boy factories for every model, creating rows through the tenancy-safe managers."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.gis.geos import Point
from django.db.models import F

from apps.accounts.models import User
from apps.comments.models import Comment
from apps.layers.models import Feature, Layer
from apps.maps.models import Map, MapCollaborator, MapLayer
from apps.workspaces.models import Membership, Role, Workspace


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "pw-123456")

    @factory.post_generation
    def _save(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            self.save()


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"ws-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


class TenantFactory(factory.django.DjangoModelFactory):
    """Creates tenant-owned rows through `for_workspace`, as services do."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        return model_class.objects.for_workspace(kwargs["workspace"]).create(*args, **kwargs)


class MapFactory(TenantFactory):
    class Meta:
        model = Map

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Map {n}")
    center = Point(24.94, 60.17, srid=4326)
    zoom = 12


class LayerFactory(TenantFactory):
    class Meta:
        model = Layer

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Layer {n}")
    geometry_type = "point"


class MapLayerFactory(TenantFactory):
    class Meta:
        model = MapLayer

    map = factory.SubFactory(MapFactory)
    layer = factory.SubFactory(LayerFactory, workspace=factory.SelfAttribute("..map.workspace"))
    workspace = factory.SelfAttribute("map.workspace")


class FeatureFactory(TenantFactory):
    class Meta:
        model = Feature

    layer = factory.SubFactory(LayerFactory)
    workspace = factory.SelfAttribute("layer.workspace")
    bucket = factory.SelfAttribute("layer.storage_bucket")
    geom = factory.Sequence(lambda n: Point(24.9 + (n % 100) / 1000, 60.1 + (n % 50) / 1000, srid=4326))
    properties = factory.Sequence(lambda n: {"name": f"Feature {n}", "rank": n})

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        feature = super()._create(model_class, *args, **kwargs)
        # Keep the layer's counter true, as the feature services do.
        Layer.objects.for_workspace(feature.workspace_id).filter(pk=feature.layer_id).update(
            feature_count=F("feature_count") + 1
        )
        return feature


class CollaboratorFactory(TenantFactory):
    class Meta:
        model = MapCollaborator

    map = factory.SubFactory(MapFactory)
    workspace = factory.SelfAttribute("map.workspace")
    user = factory.SubFactory(UserFactory)
    email = factory.SelfAttribute("user.email")
    permission = "view"
    accepted_at = factory.Faker("date_time", tzinfo=__import__("datetime").UTC)


class CommentFactory(TenantFactory):
    class Meta:
        model = Comment

    map = factory.SubFactory(MapFactory)
    workspace = factory.SelfAttribute("map.workspace")
    body = factory.Faker("sentence")
    author = factory.SubFactory(UserFactory)
