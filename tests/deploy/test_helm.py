"""The Helm chart (deploy/helm/breakwater), rendered by Helm's own engine without a cluster
(``helm-python-sdk``: Helm's Go SDK in a wheel) and each manifest checked against Kubernetes'
schemas (``kubernetes-validate``, strict: unknown fields fail too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from breakwater.core.config import parse_config

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "breakwater"
#: the oldest Kubernetes the chart claims (Chart.yaml kubeVersion allows 1.25; the native preStop
#: sleep needs 1.30) and a recent one
KUBERNETES = ("1.30.0", "1.35.0")


def render(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Kind -> the one manifest of that kind the chart renders with ``values``."""
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values or {}, name="gw", namespace="prod")
    out: dict[str, dict[str, Any]] = {}
    for text in files.values():
        for doc in yaml.safe_load_all(text):
            if doc:
                assert doc["kind"] not in out, f"two {doc['kind']} manifests"
                out[doc["kind"]] = doc
    return out


def test_helm_lint_finds_no_error() -> None:
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize(
    "values",
    [
        {},
        {"autoscaling": {"enabled": False}, "podDisruptionBudget": {"enabled": False}},
        {
            "drain": {"preStopSeconds": 10},
            "secretEnv": [{"name": "OPENAI_API_KEY", "secret": "llm-keys", "key": "openai"}],
            "env": [{"name": "TZ", "value": "UTC"}],
            "serviceMonitor": {"enabled": True},
            "tls": {"secretName": "gateway-tls"},
        },
    ],
    ids=["defaults", "fixed-replicas", "everything"],
)
def test_every_manifest_is_valid_kubernetes(values: dict[str, Any], version: str) -> None:
    manifests = render(values)
    for kind, manifest in manifests.items():
        if kind == "ServiceMonitor":
            continue  # a CRD: not in Kubernetes' schemas (checked below)
        kubernetes_validate.validate(manifest, version, strict=True)


def test_probes_and_the_drain_match_the_gateway() -> None:
    manifests = render({"drain": {"delaySeconds": 7, "timeoutSeconds": 20, "preStopSeconds": 3}})
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 3}}
    # preStop, then the gateway's own delay with /readyz at 503, then in-flight requests finish
    assert pod["terminationGracePeriodSeconds"] == 3 + 7 + 20 + 5
    config = parse_config(manifests["ConfigMap"]["data"]["breakwater.yaml"])
    assert (config.server.drain_delay_s, config.server.drain_timeout_s) == (7, 20)
    assert "lifecycle" not in render()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_the_config_map_holds_the_config_and_secrets_come_by_reference() -> None:
    values = {
        "config": {
            "providers": {"anthropic": {"type": "anthropic", "api_key": "env:ANTHROPIC_API_KEY"}},
            "deployments": {"claude": {"provider": "anthropic", "model": "claude-sonnet-4-5"}},
            "routes": {"claude": {"deployments": ["claude"]}},
            "server": {"admin_key": "env:BREAKWATER_ADMIN_KEY", "max_body_bytes": 1000},
        },
        "secretEnv": [
            {"name": "ANTHROPIC_API_KEY", "secret": "llm-keys", "key": "anthropic"},
            {"name": "BREAKWATER_ADMIN_KEY", "secret": "gateway-admin", "key": "token"},
        ],
    }
    manifests = render(values)
    config = parse_config(manifests["ConfigMap"]["data"]["breakwater.yaml"])
    assert config.providers["anthropic"].api_key == "env:ANTHROPIC_API_KEY"
    assert config.server.admin_key == "env:BREAKWATER_ADMIN_KEY" and config.server.max_body_bytes == 1000
    container = manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "ANTHROPIC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "anthropic"}}},
        {"name": "BREAKWATER_ADMIN_KEY", "valueFrom": {"secretKeyRef": {"name": "gateway-admin", "key": "token"}}},
    ]
    assert container["args"] == ["--config", "/etc/breakwater/breakwater.yaml", "--workers", "2"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/etc/breakwater"] == "config"
    assert "Secret" not in manifests  # the chart never holds a secret's value


def test_a_changed_config_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = render(values)["Deployment"]["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"drain": {"delaySeconds": 9}})


def test_autoscaling_owns_the_replica_count_when_on() -> None:
    on = render()
    assert "replicas" not in on["Deployment"]["spec"]
    assert on["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == on["Deployment"]["metadata"]["name"]
    off = render({"autoscaling": {"enabled": False}, "replicaCount": 3})
    assert off["Deployment"]["spec"]["replicas"] == 3 and "HorizontalPodAutoscaler" not in off


def test_service_and_service_monitor_select_the_pods() -> None:
    assert "ServiceMonitor" not in render()
    manifests = render(
        {"serviceMonitor": {"enabled": True, "bearerTokenSecret": {"name": "gateway-admin", "key": "token"}}}
    )
    pods = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = manifests["Service"]["spec"]
    assert service["selector"].items() <= pods.items()
    assert service["ports"][0]["targetPort"] == "http"
    monitor = manifests["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= manifests["Service"]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert endpoint["bearerTokenSecret"] == {"name": "gateway-admin", "key": "token"}


def test_tls_mounts_the_secret_sets_server_tls_and_probes_over_https() -> None:
    plain = render()["Deployment"]["spec"]["template"]["spec"]
    assert plain["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    ca = {"ca": {"secret": {"name": "gateway-ca", "key": "ca.crt"}}, "serverName": "breakwater"}
    manifests = render({"tls": {"secretName": "gateway-tls"}, "serviceMonitor": {"enabled": True, "tlsConfig": ca}})
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    assert {"name": "tls", "secret": {"secretName": "gateway-tls"}} in pod["volumes"]
    assert {"name": "tls", "mountPath": "/etc/breakwater/tls", "readOnly": True} in container["volumeMounts"]
    config = parse_config(manifests["ConfigMap"]["data"]["breakwater.yaml"])
    assert config.server.tls is not None
    assert (config.server.tls.cert, config.server.tls.key) == (
        "file:/etc/breakwater/tls/tls.crt",
        "file:/etc/breakwater/tls/tls.key",
    )
    (endpoint,) = manifests["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == ca
