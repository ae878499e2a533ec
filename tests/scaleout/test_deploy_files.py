"""The deployment files in deploy/ are valid and agree with each other: what can be checked without a
Docker engine or a cluster. YAML parses; the compose file has 2+ gateway replicas on one PostgreSQL and
one Redis behind nginx, whose address is the gateways' only trusted proxy; nginx's config passes
`nginx -t` and is set up for SSE; every gateway config passes `sluicegate check-config`, and the example
one actually serves on PostgreSQL and Redis; the Kubernetes objects probe /readyz and /healthz and give
streams time to drain before the kubelet's SIGKILL.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from scaleout_kit import READY_TIMEOUT
from support.gateway import run_cli, start_gateway

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROOT = DEPLOY.parent
ENV = {
    "DATABASE_URL": "postgresql://sluicegate:pw@postgres:5432/sluicegate",
    "REDIS_URL": "redis://redis:6379/0",
    "SLUICEGATE_CLIENT_KEY": "sk-deploy-files-test-key-000000000001",
    "OPENAI_API_KEY": "sk-test-openai",
    "DEEPSEEK_API_KEY": "sk-test-deepseek",
    "SLUICEGATE_ADMIN_KEY": "admin-key-for-the-deploy-test",
}


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def k8s_objects() -> dict[str, dict[str, Any]]:
    """kind -> object, over every file in deploy/k8s."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "kind" in doc:
                objects[doc["kind"]] = doc
    return objects


def configmap_config() -> dict[str, Any]:
    return yaml.safe_load(k8s_objects()["ConfigMap"]["data"]["sluicegate.yaml"])


# -- compose ---------------------------------------------------------------------------------------------


def gateway_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if name.startswith("gateway")}


def test_compose_runs_two_or_more_gateways_on_one_postgresql_and_one_redis() -> None:
    compose = load("compose.yaml")
    gateways = gateway_services(compose)
    assert len(gateways) >= 2
    assert {"postgres", "redis", "nginx"} <= set(compose["services"])
    for name, service in gateways.items():
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"], (
            name
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in service, "only nginx is published"
    assert compose["services"]["nginx"]["ports"] == ["8080:80"]


def test_nginx_is_the_only_address_the_gateways_trust_for_x_forwarded_for() -> None:
    compose = load("compose.yaml")
    nginx_ip = ipaddress.ip_address(compose["services"]["nginx"]["networks"]["backend"]["ipv4_address"])
    trusted = [ipaddress.ip_network(n) for n in load("sluicegate.yaml")["server"]["trusted_proxies"]]
    assert any(nginx_ip in n for n in trusted)
    for service in gateway_services(compose).values():
        gw_ip = ipaddress.ip_address(service["networks"]["backend"]["ipv4_address"])
        assert not any(gw_ip in n for n in trusted), "a gateway is not a proxy"


def test_nginx_balances_over_exactly_the_compose_gateways() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    servers = set(re.findall(r"^\s*server\s+([\d.]+):8080", conf, re.MULTILINE))
    ips = {s["networks"]["backend"]["ipv4_address"] for s in gateway_services(load("compose.yaml")).values()}
    assert servers == ips


def test_compose_lets_streams_drain_before_it_kills_a_gateway() -> None:
    grace = float(load("sluicegate.yaml")["server"]["shutdown_grace_s"])
    for service in gateway_services(load("compose.yaml")).values():
        stop = int(service["stop_grace_period"].rstrip("s"))
        assert stop >= grace + 5, "shutdown_grace_s plus time to flush the log"


# -- nginx -----------------------------------------------------------------------------------------------


def test_nginx_config_is_set_up_for_sse() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    for directive in (
        "proxy_buffering off;",
        "proxy_cache off;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ):
        assert directive in conf, directive
    total = float(load("sluicegate.yaml")["timeouts"]["total"])
    read_timeout = int(re.search(r"proxy_read_timeout\s+(\d+)s;", conf).group(1))  # type: ignore[union-attr]
    assert read_timeout >= total, "nginx must not end a stream the gateway still allows"
    assert "non_idempotent" not in conf, "a POST must never be replayed on another replica"


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx)")
def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(DEPLOY / "nginx.conf"),
            "-g",
            f"pid {tmp_path}/nginx.pid;",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


# -- gateway configurations ------------------------------------------------------------------------------


def test_the_example_config_passes_check_config(tmp_path: Path) -> None:
    result = run_cli("check-config", str(DEPLOY / "sluicegate.yaml"), env=ENV, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout and "gpt-4o-mini" in result.stdout
    assert ENV["OPENAI_API_KEY"] not in result.stdout, "secrets are masked"


def test_the_kubernetes_configmap_config_passes_check_config(tmp_path: Path) -> None:
    path = tmp_path / "sluicegate.yaml"
    path.write_text(k8s_objects()["ConfigMap"]["data"]["sluicegate.yaml"])
    result = run_cli("check-config", str(path), env=ENV, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_config_serves_on_postgresql_and_redis(pg_url: str, redis_url: str) -> None:
    """The file the image ships, run for real against this machine's PostgreSQL and Redis."""
    env = {**ENV, "DATABASE_URL": pg_url, "REDIS_URL": redis_url}
    gateway = start_gateway((DEPLOY / "sluicegate.yaml").read_text(), env=env, ready_timeout=READY_TIMEOUT)
    try:
        ready = httpx.get(f"{gateway.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["store"] is True and ready.json()["redis"] is True
        anonymous = httpx.post(
            f"{gateway.base_url}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert anonymous.status_code == 401
    finally:
        gateway.stop()


# -- Dockerfile ------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_runs_the_gateway_as_a_non_root_user_with_a_healthcheck() -> None:
    ins = dockerfile_instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert all(f.startswith("python:3.11-slim") for f in froms)
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "8080") in ins
    healthcheck = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert healthcheck and "/healthz" in healthcheck[0]
    cmd = [rest for word, rest in ins if word == "CMD"][-1]
    assert yaml.safe_load(cmd) == [
        "sluicegate",
        "serve",
        "--config",
        "/etc/sluicegate/sluicegate.yaml",
        "--host",
        "0.0.0.0",
    ]


def test_the_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    """.dockerignore (repository root, the build context) excludes everything but what COPY needs."""
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for word, rest in dockerfile_instructions():
        if word == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert source.rstrip("/") in allowed, source
                assert (ROOT / source).exists(), source


# -- Kubernetes ------------------------------------------------------------------------------------------


def test_kubernetes_objects_are_all_there_and_select_the_same_pods() -> None:
    objects = k8s_objects()
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} <= set(objects)
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        selector = objects[kind]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"], "the example secret is never applied"


def test_kubernetes_probes_readiness_on_readyz_and_liveness_on_healthz() -> None:
    container = k8s_objects()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_kubernetes_gives_streams_their_grace_before_the_kubelet_kills_the_pod() -> None:
    pod = k8s_objects()["Deployment"]["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = float(configmap_config()["server"]["shutdown_grace_s"])
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + grace + 5


def test_kubernetes_runs_several_workers_or_replicas_only_with_redis() -> None:
    config = configmap_config()
    replicas = k8s_objects()["Deployment"]["spec"]["replicas"]
    assert replicas >= 2 and config["redis"], "limits are exact across replicas only through Redis"
    assert str(config["database"]).startswith("${"), "the database URL (with its password) is a secret"
