"""deploy/k8s renders, every object validates, and a broken one does not."""

from __future__ import annotations

import copy
import os
import shutil
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from .manifests import (
    K8S,
    OVERLAYS,
    InvalidManifest,
    Manifest,
    kustomize,
    of_kind,
    render,
    validate,
)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_the_overlay_matches_its_schema(overlay: str) -> None:
    manifests = render(overlay)
    for manifest in manifests:
        validate(manifest)
    kinds = Counter(m["kind"] for m in manifests)
    # The shape of the suite: seven services, six catalog topics and their DLQs, one of each
    # operator-run store.
    assert kinds["Deployment"] + kinds["StatefulSet"] == 7
    assert kinds["KafkaTopic"] == 12
    assert kinds["Kafka"] == 1
    assert kinds["Cluster"] == 1
    assert kinds["Ingress"] == 1
    assert kinds["KafkaNodePool"] == (1 if overlay == "dev" else 2)


def _prod_from(overlay: Path) -> str:
    """kustomize takes relative paths only."""
    return os.path.relpath(K8S / "overlays" / "prod", overlay)


def _first(kind: str) -> Manifest:
    return copy.deepcopy(of_kind(render("prod"), kind)[0])


def _broken() -> list[Manifest]:
    deployment = _first("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = (
        "/readyz"
    )
    topic = _first("KafkaTopic")
    topic["spec"]["partitions"] = "twelve"
    scaled = _first("ScaledObject")
    del scaled["spec"]["scaleTargetRef"]
    cluster = _first("Cluster")
    cluster["spec"]["instances"] = "three"
    pool = _first("KafkaNodePool")
    pool["spec"]["roles"] = ["leader"]
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    return [deployment, topic, scaled, cluster, pool, unknown]


@pytest.mark.parametrize("manifest", _broken(), ids=lambda m: m["kind"])
def test_a_broken_object_fails_validation(manifest: Manifest) -> None:
    with pytest.raises(InvalidManifest):
        validate(manifest)


def test_a_broken_manifest_in_an_overlay_fails_the_render_or_the_validation(
    tmp_path: Path,
) -> None:
    overlay = tmp_path / "broken"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        textwrap.dedent(
            f"""\
            resources:
              - {_prod_from(overlay)}
              - extra.yaml
            """
        )
    )
    (overlay / "extra.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: keda.sh/v1alpha1
            kind: ScaledObject
            metadata: {name: extra}
            spec:
              scaleTargetRef: {name: dialogs}
              maxReplicaCount: many
              triggers: [{type: kafka, metadata: {consumerGroup: dialogs}}]
            """
        )
    )
    manifests = kustomize(overlay)
    extra = [m for m in manifests if m["metadata"]["name"] == "extra"]
    assert len(extra) == 1
    with pytest.raises(InvalidManifest, match="maxReplicaCount"):
        validate(extra[0])
    (overlay / "extra.yaml").write_text("kind: [unterminated\n")
    with pytest.raises(InvalidManifest, match="kubectl kustomize"):
        kustomize(overlay)


def test_the_backup_placeholder_stays_valid_against_the_cluster_schema(tmp_path: Path) -> None:
    overlay = tmp_path / "with-backup"
    overlay.mkdir()
    shutil.copy(K8S / "overlays" / "prod" / "backup.example.yaml", overlay / "backup.yaml")
    (overlay / "kustomization.yaml").write_text(
        textwrap.dedent(
            f"""\
            resources:
              - {_prod_from(overlay)}
            patches:
              - target: {{kind: Cluster, name: openlines-pg}}
                path: backup.yaml
            """
        )
    )
    (cluster,) = of_kind(kustomize(overlay), "Cluster")
    assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
    validate(cluster)
