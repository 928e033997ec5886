from __future__ import annotations

from django.db import migrations

from apps.core.migration_sql import tenant_foreign_key


class Migration(migrations.Migration):
    dependencies = [("layers", "0001_initial")]

    operations = [
        tenant_foreign_key("layers_feature", "layer_id", "layers_layer"),
        migrations.RunSQL(
            """
            ALTER TABLE layers_feature
              ADD CONSTRAINT feature_properties_is_object CHECK (jsonb_typeof(properties) = 'object'),
              ADD CONSTRAINT feature_geom_not_empty CHECK (NOT ST_IsEmpty(geom)),
              -- Uses the cached bounding box: cheap, and catches projected data labelled 4326.
              ADD CONSTRAINT feature_geom_in_wgs84_range CHECK (
                ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90
              );
            ALTER TABLE layers_layer
              ADD CONSTRAINT layer_attribute_schema_is_object CHECK (jsonb_typeof(attribute_schema) = 'object'),
              ADD CONSTRAINT layer_style_config_is_object CHECK (jsonb_typeof(style_config) = 'object');
            """,
            """
            ALTER TABLE layers_feature DROP CONSTRAINT feature_properties_is_object,
              DROP CONSTRAINT feature_geom_not_empty, DROP CONSTRAINT feature_geom_in_wgs84_range;
            ALTER TABLE layers_layer DROP CONSTRAINT layer_attribute_schema_is_object,
              DROP CONSTRAINT layer_style_config_is_object;
            """,
        ),
    ]
