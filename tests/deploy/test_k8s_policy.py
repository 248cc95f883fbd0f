"""The rules deploy/k8s must keep, checked on the rendered overlays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from openlines.events.lines import load_lines
from openlines.events.topics import TOPICS, dlq_topic
from openlines.kit.settings import DEV_JWT_SECRET, KitSettings
from openlines.stack.gateway import ROUTES, resolve
from openlines.stack.services import MODULES

from .manifests import K8S, OVERLAYS, Manifest, by_name, generator, of_kind, render

WORKLOADS = ("Deployment", "StatefulSet")


def workloads(overlay: str) -> list[Manifest]:
    return [m for kind in WORKLOADS for m in of_kind(render(overlay), kind)]


def containers(overlay: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (w["metadata"]["name"], c)
        for w in workloads(overlay)
        for c in w["spec"]["template"]["spec"]["containers"]
    ]


def env_config(overlay: str) -> dict[str, str]:
    (config,) = [
        m
        for m in of_kind(render(overlay), "ConfigMap")
        if m["metadata"]["name"].startswith("openlines-env")
    ]
    return dict(config["data"])


@pytest.fixture(scope="module")
def services() -> list[Any]:
    """What the services' own composition roots say (consumer groups, topics, database)."""
    return list(generator().services())


# -- generated from the code ------------------------------------------------------------------


def test_the_generated_manifests_are_what_the_generator_writes_today() -> None:
    stale = generator().stale(generator().outputs())
    assert not stale, f"run .venv/bin/python deploy/k8s/generate.py: {stale}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_kafka_topic_per_catalog_topic_and_its_dlq(overlay: str) -> None:
    topics = by_name(of_kind(render(overlay), "KafkaTopic"))
    wanted = {t for name in TOPICS for t in (name, dlq_topic(name))}
    assert {t["spec"]["topicName"] for t in topics.values()} == wanted
    replicas, min_isr = (1, "1") if overlay == "dev" else (3, "2")
    for topic in topics.values():
        spec = topic["spec"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "openlines"
        assert spec["config"]["retention.ms"] == "-1"  # the system of record for replay
        assert spec["replicas"] == replicas
        assert spec["config"]["min.insync.replicas"] == min_isr
        assert spec["partitions"] >= 1


def test_kafka_is_kraft_with_node_pools_and_rack_awareness_in_prod() -> None:
    dev, prod = (render(o) for o in OVERLAYS)
    (pool,) = of_kind(dev, "KafkaNodePool")
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["spec"]["replicas"] == 1
    pools = {
        tuple(p["spec"]["roles"]): p["spec"]["replicas"] for p in of_kind(prod, "KafkaNodePool")
    }
    assert pools == {("controller",): 3, ("broker",): 3}
    (kafka,) = of_kind(prod, "Kafka")
    assert kafka["spec"]["kafka"]["rack"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert "zookeeper" not in kafka["spec"]
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2


def _ingress_rules(overlay: str) -> list[tuple[str, str]]:
    (ingress,) = of_kind(render(overlay), "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
    (rule,) = ingress["spec"]["rules"]
    return [(p["path"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_has_the_gateways_routes(overlay: str) -> None:
    rules = _ingress_rules(overlay)
    deployed = {w["metadata"]["name"] for w in workloads(overlay)}
    expected = [(r.pattern.pattern + "$", r.upstream) for r in ROUTES if r.upstream in deployed]
    assert sorted(rules) == sorted(expected)
    # Every upstream the gateway knows is deployed, except its local provider stand-in.
    assert {r.upstream for r in ROUTES} - deployed == {"sandbox"}
    services = {s["metadata"]["name"] for s in of_kind(render(overlay), "Service")}
    assert {backend for _, backend in rules} <= services


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/dialogs",
        "/api/v1/dialogs/7",
        "/api/v1/dialogs/7/lead",
        "/api/v1/dialogs/7/lead/",
        "/api/v1/dialogs/7/leads",
        "/api/v1/dialogsx",
        "/webhooks/telegram/tg-support",
        "/api/v1/crm/leads/1",
        "/api/v1/stream",
        "/api/v1/webhooks/1/deliveries",
        "/api/v1/reports/summary",
        "/api/v1/operators/ann/presence",
        "/api/v1/queues",
        "/api/v1/quick-replies",
        "/api/v1/counters",
        "/nothing",
    ],
)
def test_the_ingress_sends_a_path_where_the_gateway_does(path: str) -> None:
    # ingress-nginx: regex locations, case-insensitive, longest path first, prefix-anchored.
    rules = sorted(_ingress_rules("prod"), key=lambda rule: -len(rule[0]))
    ingress = next(
        (backend for regex, backend in rules if re.match(regex, path, re.IGNORECASE)), None
    )
    assert ingress == resolve(ROUTES, path)


# -- scaling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_consumer_group_scales_on_its_lag_within_its_partitions(
    overlay: str, services: list[Any]
) -> None:
    scaled = by_name(of_kind(render(overlay), "ScaledObject"))
    partitions = {
        t["spec"]["topicName"]: t["spec"]["partitions"]
        for t in of_kind(render(overlay), "KafkaTopic")
    }
    consumers = [s for s in services if s.consumers]
    assert {s.name for s in consumers} == set(scaled)
    for svc in consumers:
        spec = scaled[svc.name]["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": svc.kind,
            "name": svc.name,
        }
        bound = min(partitions[t] for c in svc.consumers for t in c.topics)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= bound, svc.name
        triggers = [t["metadata"] for t in spec["triggers"] if t["type"] == "kafka"]
        if svc.shape.per_replica:
            # notify: every replica reads every partition in a group of its own; more
            # replicas never lower a lag, so it scales on CPU (its WebSocket sessions).
            assert triggers == []
            assert any(t["type"] == "cpu" for t in spec["triggers"])
            continue
        assert {t["consumerGroup"] for t in triggers} == {c.group for c in svc.consumers}
        for trigger in triggers:
            assert trigger["bootstrapServers"].startswith("openlines-kafka-bootstrap.")
            assert trigger["allowIdleConsumers"] == "false"
            (consumer,) = [c for c in svc.consumers if c.group == trigger["consumerGroup"]]
            if "topic" in trigger:
                assert (trigger["topic"],) == consumer.topics
            else:
                assert len(consumer.topics) > 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_and_the_gateway_paths_scale_on_cpu(overlay: str) -> None:
    manifests = render(overlay)
    hpas = by_name(of_kind(manifests, "HorizontalPodAutoscaler"))
    scaled = by_name(of_kind(manifests, "ScaledObject"))
    cpu = {
        name
        for name, h in hpas.items()
        for m in h["spec"]["metrics"]
        if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
    } | {name for name, s in scaled.items() for t in s["spec"]["triggers"] if t["type"] == "cpu"}
    api = {r.upstream for r in ROUTES} - {"sandbox"}
    assert "ingest" in hpas
    assert api <= cpu
    # One autoscaler per workload: an HPA beside a ScaledObject (which makes its own) fights it.
    assert not set(hpas) & set(scaled)


# -- workloads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_seven_services_from_one_image_by_their_command(overlay: str) -> None:
    names = {w["metadata"]["name"] for w in workloads(overlay)}
    assert names == set(MODULES) - {"gateway", "sandbox"}
    images = set()
    for name, container in containers(overlay):
        assert container["args"] == ["python", "-m", MODULES[name]]
        images.add(container["image"])
    (image,) = images
    repository, _, tag = image.rpartition(":")
    assert repository and tag and tag != "latest"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_probes_resources_and_a_locked_down_security_context(
    overlay: str,
) -> None:
    for name, c in containers(overlay):
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz", name
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        # Migrations run before the port opens: the startup probe allows minutes for them.
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, name
        resources = c["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert "add" not in sc["capabilities"], name
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not c["image"].endswith(":latest") and ":" in c["image"], name
    for w in workloads(overlay):
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert not pod.get("hostNetwork") and not pod.get("hostPID")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_account_without_a_token_and_a_disruption_budget(
    overlay: str,
) -> None:
    manifests = render(overlay)
    accounts = by_name(of_kind(manifests, "ServiceAccount"))
    budgets = of_kind(manifests, "PodDisruptionBudget")
    for w in workloads(overlay):
        name = w["metadata"]["name"]
        assert w["spec"]["template"]["spec"]["serviceAccountName"] == name
        assert accounts[name]["automountServiceAccountToken"] is False
        labels = w["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, name


def test_prod_spreads_every_service_over_zones_and_nodes() -> None:
    for w in workloads("prod"):
        constraints = w["spec"]["template"]["spec"]["topologySpreadConstraints"]
        keys = {c["topologyKey"] for c in constraints}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for c in constraints:
            # Per service: the pod's own app.kubernetes.io/name joins the selector.
            assert c["matchLabelKeys"] == ["app.kubernetes.io/name"]
    for kind in ("ScaledObject", "HorizontalPodAutoscaler"):
        for scaler in of_kind(render("prod"), kind):
            spec = scaler["spec"]
            assert spec.get("minReplicaCount", spec.get("minReplicas")) >= 2


# -- network -----------------------------------------------------------------------------------


def _namespaces(peers: list[dict[str, Any]]) -> set[str]:
    return {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for p in peers
        if "namespaceSelector" in p
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_network_policy(overlay: str, services: list[Any]) -> None:
    manifests = render(overlay)
    policies = of_kind(manifests, "NetworkPolicy")
    api = {r.upstream for r in ROUTES}
    with_db = {s.name for s in services if s.uses_database}
    for service in of_kind(manifests, "Service"):
        name = service["metadata"]["name"]
        selector = service["spec"]["selector"]
        (policy,) = [p for p in policies if p["spec"]["podSelector"].get("matchLabels") == selector]
        spec = policy["spec"]
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
        sources = _namespaces([p for rule in spec["ingress"] for p in rule["from"]])
        # From the Ingress controller to the API services only; Prometheus scrapes all.
        assert sources == ({"ingress-nginx", "monitoring"} if name in api else {"monitoring"})
        egress_ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
        assert {53, 9092} <= egress_ports, name
        assert (5432 in egress_ports) == (name in with_db), name
        internet = [p["ipBlock"] for rule in spec["egress"] for p in rule["to"] if "ipBlock" in p]
        # Providers (outbound) and webhook receivers (notify), on https, never private ranges.
        if name in ("outbound", "notify"):
            (block,) = internet
            assert "10.0.0.0/8" in block["except"]
        else:
            assert internet == [], name
    (deny,) = [p for p in policies if p["metadata"]["name"] == "openlines-default-deny"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


# -- config and secrets ------------------------------------------------------------------------

SECRET_LIKE = re.compile(r"SECRET|PASSWORD|TOKEN|KEY", re.IGNORECASE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_by_reference_only(overlay: str) -> None:
    manifests = render(overlay)
    assert of_kind(manifests, "Secret") == []
    for name, c in containers(overlay):
        for source in c.get("envFrom", []):
            assert "secretRef" not in source, name  # every secret named, key by key
        for var in c["env"]:
            if SECRET_LIKE.search(var["name"]):
                assert "value" not in var, (name, var["name"])
                assert "secretKeyRef" in var["valueFrom"], (name, var["name"])
    for key in env_config(overlay):
        assert not SECRET_LIKE.search(key), key


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_lines_configmap_is_the_lines_file_and_passes_the_production_guard(
    overlay: str, tmp_path: Path
) -> None:
    config = env_config(overlay)
    assert config["OPENLINES_ENV"] == "production"
    (lines_map,) = [
        m
        for m in of_kind(render(overlay), "ConfigMap")
        if m["metadata"]["name"].startswith("openlines-lines")
    ]
    text = lines_map["data"]["lines.yaml"]
    assert text == (K8S / "base" / "lines.yaml").read_text()
    mounted = Path(config["OPENLINES_LINES_FILE"])
    for w in workloads(overlay):
        pod = w["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v.get("configMap")]
        assert volume["configMap"]["name"] == lines_map["metadata"]["name"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
        assert Path(mount["mountPath"]) / "lines.yaml" == mounted
    path = tmp_path / "lines.yaml"
    path.write_text(text)
    lines = load_lines(path, env={})
    assert lines.lines
    # The guard of a production service with real secrets passes on this file...
    KitSettings(env="production", jwt_secret="x" * 40, lines_file=str(path))
    # ...and it is on: the dev JWT secret is refused.
    with pytest.raises(Exception, match="production refuses the dev JWT secret"):
        KitSettings(env="production", jwt_secret=DEV_JWT_SECRET, lines_file=str(path))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_channel_secret_reaches_the_service_that_needs_it(overlay: str) -> None:
    lines = load_lines(K8S / "base" / "lines.yaml", env={})
    channels = [c.id for line in lines.lines for c in line.channels]
    env = {name: {v["name"]: v for v in c["env"]} for name, c in containers(overlay)}
    for channel in channels:
        suffix = channel.upper().replace("-", "_")
        secret = env["ingest"][f"OPENLINES_SECRET_{suffix}"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "openlines-channels", "key": f"{channel}.secret"}
        token = env["outbound"][f"OPENLINES_TOKEN_{suffix}"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": "openlines-channels", "key": f"{channel}.token"}
    for name, variables in env.items():
        assert "OPENLINES_JWT_SECRET" in variables, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_postgres_role_and_schema_per_service_with_a_database(
    overlay: str, services: list[Any]
) -> None:
    (cluster,) = of_kind(render(overlay), "Cluster")
    assert cluster["spec"]["instances"] == (1 if overlay == "dev" else 3)
    assert cluster["spec"]["enablePDB"] is True
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    sql = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    env = {name: {v["name"]: v for v in c["env"]} for name, c in containers(overlay)}
    owners = [s for s in services if s.uses_database]
    assert set(roles) == {s.role for s in owners}
    assert "ingest" not in {s.name for s in owners}
    for svc in owners:
        role = roles[svc.role]
        assert role["login"] is True
        assert f"CREATE SCHEMA {svc.role} AUTHORIZATION {svc.role}" in sql
        variables = env[svc.name]
        url = variables["OPENLINES_DATABASE_URL"]["value"]
        assert url.startswith(f"postgresql://{svc.role}@openlines-pg-rw:5432/"), url
        password = variables["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password["name"] == role["passwordSecret"]["name"]


# -- observability -----------------------------------------------------------------------------


def test_prod_has_a_service_monitor_per_service_and_an_otlp_endpoint() -> None:
    manifests = render("prod")
    monitors = by_name(of_kind(manifests, "ServiceMonitor"))
    services = by_name(of_kind(manifests, "Service"))
    assert set(monitors) == set(services)
    for name, monitor in monitors.items():
        # A ServiceMonitor selects Services by their labels.
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= services[name]["metadata"]["labels"].items()
        assert selector["app.kubernetes.io/name"] == name
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert env_config("prod")["OPENLINES_OTLP_ENDPOINT"].startswith("http")
    assert of_kind(render("dev"), "ServiceMonitor") == []  # an optional component


def test_the_settings_configmap_names_only_real_settings() -> None:
    text = (K8S / "base" / "settings.env").read_text()
    keys = [line.split("=", 1)[0] for line in text.splitlines() if line and line[0] != "#"]
    fields = set(KitSettings.model_fields)
    for key in keys:
        if key.startswith("OPENLINES_"):
            assert key.removeprefix("OPENLINES_").lower() in fields, key


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replication_fits_the_brokers_and_survives_one_down_in_prod(overlay: str) -> None:
    manifests = render(overlay)
    brokers = sum(
        p["spec"]["replicas"]
        for p in of_kind(manifests, "KafkaNodePool")
        if "broker" in p["spec"]["roles"]
    )
    (kafka,) = of_kind(manifests, "Kafka")
    config = kafka["spec"]["kafka"]["config"]
    for key in ("default.replication.factor", "offsets.topic.replication.factor"):
        assert config[key] <= brokers, key
    assert config["min.insync.replicas"] <= config["default.replication.factor"]
    for topic in of_kind(manifests, "KafkaTopic"):
        replicas = topic["spec"]["replicas"]
        min_isr = int(topic["spec"]["config"]["min.insync.replicas"])
        assert min_isr <= replicas <= brokers
        if overlay == "prod":
            # acks=all still succeeds with one broker down (a rolling restart, a lost zone).
            assert min_isr < replicas
