"""Render deploy/k8s overlays and validate each object, offline.

- built-in kinds: the Kubernetes OpenAPI schemas of K8S_VERSION (kubernetes-validate, strict:
  an unknown field is an error, as the API server's strict field validation makes it);
- Strimzi, CloudNativePG and KEDA objects: their CRD schemas in deploy/k8s/schemas/;
- ServiceMonitor (the optional monitoring component): no schema is vendored for it; the policy
  tests check the fields it has.
Anything else is an error: a new kind needs a schema first.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
OVERLAYS = ("dev", "prod")
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
HADOLINT = BIN / "hadolint"

# The oldest Kubernetes minor the manifests must work on (topologySpreadConstraints'
# matchLabelKeys, autoscaling/v2, policy/v1 are all older).
K8S_VERSION = "1.34.0"
BUILT_IN_GROUPS = frozenset(
    {"", "apps", "policy", "autoscaling", "batch", "networking.k8s.io", "rbac.authorization.k8s.io"}
)
CRD_GROUPS = frozenset({"kafka.strimzi.io", "postgresql.cnpg.io", "keda.sh"})
UNSCHEMED = frozenset({("monitoring.coreos.com", "ServiceMonitor")})

Manifest = dict[str, Any]


class InvalidManifest(Exception):
    pass


def kustomize(path: Path) -> list[Manifest]:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise InvalidManifest(f"kubectl kustomize {path}: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@functools.cache
def render(overlay: str) -> tuple[Manifest, ...]:
    return tuple(kustomize(K8S / "overlays" / overlay))


def group_version(manifest: Manifest) -> tuple[str, str]:
    api_version = str(manifest["apiVersion"])
    group, _, version = api_version.rpartition("/")
    return group, version


@functools.cache
def crd_schema(group: str, version: str, kind: str) -> Any:
    path = SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.is_file():
        raise InvalidManifest(f"no schema for {group}/{version} {kind} in {SCHEMAS}")
    return json.loads(path.read_text())


def validate(manifest: Manifest) -> None:
    """Raise InvalidManifest unless the object matches the schema of its kind."""
    group, version = group_version(manifest)
    kind = manifest.get("kind", "")
    name = f"{kind} {manifest.get('metadata', {}).get('name')}"
    if group in BUILT_IN_GROUPS:
        validator = built_in_validator(str(manifest["apiVersion"]), kind)
    elif group in CRD_GROUPS:
        validator = jsonschema.Draft7Validator(crd_schema(group, version, kind))
    elif (group, kind) in UNSCHEMED:
        return
    else:
        raise InvalidManifest(f"{name}: no schema known for {manifest['apiVersion']}")
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        raise InvalidManifest(f"{name}: {detail}")


@functools.cache
def built_in_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """kubernetes-validate's schemas and lookup (its `validate`, strict), loaded once: the
    library reads 1.5 MB of definitions on every call."""
    directory = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict"
    # apps/v1 -> apps-v1, networking.k8s.io/v1 -> networking-v1, v1 -> v1
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"{directory}/{kind.lower()}-{api}.json", K8S_VERSION)
    except FileNotFoundError as e:
        raise InvalidManifest(f"no Kubernetes {K8S_VERSION} schema for {api_version} {kind}") from e
    definitions = schema_contents(f"{directory}/_definitions.json", K8S_VERSION)
    registry: Registry[Any] = Resource.from_contents(definitions) @ (
        Resource.from_contents(schema) @ Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def of_kind(manifests: tuple[Manifest, ...] | list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def by_name(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests}


@functools.cache
def generator() -> ModuleType:
    """deploy/k8s/generate.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("openlines_deploy_generate", K8S / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
