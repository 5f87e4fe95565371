"""deploy/k8s: every object against the Kubernetes OpenAPI schemas (offline), then how they fit together."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from adapters.server import SHUTDOWN_GRACE
from tests.deploy.files import DEPLOY, K8S, documents

KUBERNETES = "1.30"  # the oldest release still commonly run; newer ones accept the same objects
PORT = 3978


def objects() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        found.extend(doc for doc in documents(path) if doc.get("kind") != "Kustomization")
    return found


def one(kind: str, name: str = "dari") -> dict[str, Any]:
    (found,) = [o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container() -> dict[str, Any]:
    (dari,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(dari)


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_matches_its_schema_strictly(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(one("Deployment"))
    probe = broken["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - {"secret.example.yaml"}
    # The template's placeholders must never be applied by accident.
    (secret,) = documents(K8S / "secret.example.yaml")
    assert all(v == "REPLACE_ME" or "REPLACE_ME" not in v for v in secret["stringData"].values())
    assert secret["metadata"]["name"] == "dari-secrets"


def test_probes_point_at_health_endpoints_on_the_container_port() -> None:
    dari = container()
    (port,) = dari["ports"]
    assert port["containerPort"] == PORT
    for probe, path in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ]:
        get = dari[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] in (PORT, port["name"])


def test_pods_run_as_non_root_on_a_read_only_root_with_a_writable_tmp() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert f"USER {pod['securityContext']['runAsUser']}:" in dockerfile
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["automountServiceAccountToken"] is False


def test_resources_have_requests_and_limits() -> None:
    resources = container()["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_shutdown_fits_the_grace_period() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    # SIGTERM comes after preStop; dari then drains answers for SHUTDOWN_GRACE seconds.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + SHUTDOWN_GRACE + 5


def test_selectors_match_the_pod_labels() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("Service")["spec"]["selector"],
    ):
        assert selector.items() <= labels.items()
    assert one("Service")["spec"]["ports"][0]["targetPort"] in (PORT, container()["ports"][0]["name"])


def test_the_autoscaler_targets_the_deployment_and_leaves_room_for_disruptions() -> None:
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dari"}
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert one("PodDisruptionBudget")["spec"]["minAvailable"] < hpa["minReplicas"]
    assert one("Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_configuration_comes_from_the_configmap_and_the_secret() -> None:
    sources = container()["envFrom"]
    assert {"configMapRef": {"name": "dari-config"}} in sources
    assert {"secretRef": {"name": "dari-secrets"}} in sources
    one("ConfigMap", "dari-config")
    (secret,) = documents(K8S / "secret.example.yaml")
    assert "REDIS_URL" in secret["stringData"]
    assert re.fullmatch(r"redis://dari-redis:6379/\d+", secret["stringData"]["REDIS_URL"])


def test_redis_persists_with_aof_on_a_volume() -> None:
    redis = one("StatefulSet", "dari-redis")["spec"]
    (server,) = redis["template"]["spec"]["containers"]
    args = server["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert {"name": "data", "mountPath": "/data"} in server["volumeMounts"]
    assert redis["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert one("Service", "dari-redis")["spec"]["ports"][0]["port"] == 6379
