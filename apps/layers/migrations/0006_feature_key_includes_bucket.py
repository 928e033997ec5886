"""A feature's (layer_id, workspace_id, bucket) must be its layer's (id, workspace_id, storage_bucket).

The key that already proved layer and workspace now also proves the bucket: a writer that forgot
to put a row in its layer's bucket (Feature.bucket defaults to the shared 0) fails at commit
instead of storing a row that bucket-filtered reads (tiles) would never see. Same name, same
cascade, one trigger call per row as before. storage_bucket never changes once set.
"""

from __future__ import annotations

from django.db import migrations, models

_FORWARD = """
ALTER TABLE layers_feature DROP CONSTRAINT layers_feature_layer_id_same_workspace_fk;
ALTER TABLE layers_feature ADD CONSTRAINT layers_feature_layer_id_same_workspace_fk
    FOREIGN KEY (layer_id, workspace_id, bucket) REFERENCES layers_layer (id, workspace_id, storage_bucket)
    ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
"""

_BACKWARD = """
ALTER TABLE layers_feature DROP CONSTRAINT layers_feature_layer_id_same_workspace_fk;
ALTER TABLE layers_feature ADD CONSTRAINT layers_feature_layer_id_same_workspace_fk
    FOREIGN KEY (layer_id, workspace_id) REFERENCES layers_layer (id, workspace_id)
    ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
"""


class Migration(migrations.Migration):
    dependencies = [("layers", "0005_feature_partitioned_by_bucket")]

    operations = [
        migrations.AddConstraint(
            model_name="layer",
            constraint=models.UniqueConstraint(
                fields=("id", "workspace", "storage_bucket"), name="layer_id_workspace_bucket_unique"
            ),
        ),
        migrations.RunSQL(_FORWARD, _BACKWARD),
    ]
