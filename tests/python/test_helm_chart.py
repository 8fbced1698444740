"""Tests of the Helm chart deploy/helm/landfall, offline: no cluster and no helm binary.

Helm v4 runs in-process through helm-python-sdk (`helm_python.lint`, `Chart.load(...).render`,
which applies values.schema.json like an install does). Every rendered manifest of a core kind
is validated against the Kubernetes OpenAPI schema (kubernetes-validate, strict: unknown fields
fail) for the oldest Kubernetes the chart supports and the newest the validator knows. The
ServiceMonitor and the KEDA ScaledObject are CRDs the validator has no schema for; their
required fields are checked by hand. Every rendered sink TOML is run through
`landfall validate` (binary from $LANDFALL_BIN).
"""

from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "landfall"
EXAMPLE = CHART_DIR / "examples" / "three-sinks.yaml"
RELEASE = "lf"
NAMESPACE = "data"
FULLNAME = f"{RELEASE}-landfall"

# The chart's kubeVersion floor and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
# Kinds whose schema is not Kubernetes' own: checked field by field below.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}
# runtime.shutdown_timeout_ms bounds Landfall's whole stop (land, group leave, runtime drop), so
# the chart adds only shutdown.graceMarginSeconds (default 5) to it.
DEFAULT_SHUTDOWN_TIMEOUT_MS = 25_000

Values = dict[str, Any]
Manifest = dict[str, Any]


# --------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


def example_values() -> Values:
    loaded: Values = yaml.safe_load(EXAMPLE.read_text())
    return loaded


def all_features_values() -> Values:
    """The example with every optional object on: ServiceMonitor and KEDA already, plus a
    minAvailable PDB, so that all templates render at least once in these tests."""
    values = example_values()
    values["podDisruptionBudget"] = {"minAvailable": 1, "maxUnavailable": None}
    return values


def hpa_values() -> Values:
    values = example_values()
    values["autoscaling"]["keda"] = {"enabled": False}
    values["autoscaling"]["hpa"] = {"enabled": True}
    return values


def render(chart: helm_python.Chart, values: Values | None = None) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE)


def manifests(rendered: dict[str, str]) -> list[Manifest]:
    """Every object the chart renders (NOTES.txt and templates that render nothing excluded)."""
    out: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert isinstance(doc, dict), f"{path}: not a mapping"
                out.append(doc)
    return out


def only(objects: list[Manifest], kind: str) -> Manifest:
    found = [m for m in objects if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def sink_tomls(objects: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = only(objects, "ConfigMap")["data"]
    return data


def container(objects: list[Manifest]) -> Manifest:
    containers: list[Manifest] = only(objects, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    assert len(containers) == 1
    return containers[0]


def sinks_of(chart: helm_python.Chart, values: Values | None) -> Values:
    """The sinks after Helm's coalescing (a `null` sink in a values file removes it)."""
    merged: Values = chart.merge_values(values)
    sinks: Values = merged["sinks"]
    return sinks


def expected_grace_seconds(sinks: Values) -> int:
    largest = max(
        int((s.get("runtime") or {}).get("shutdown_timeout_ms", DEFAULT_SHUTDOWN_TIMEOUT_MS))
        for s in sinks.values()
    )
    return math.ceil(largest / 1000) + 5


VALUE_SETS = {
    "default": lambda: None,
    "three-sinks": example_values,
    "all-features": all_features_values,
    "hpa": hpa_values,
}


@pytest.fixture(params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> tuple[str, Values | None]:
    name: str = request.param
    return name, VALUE_SETS[name]()


# ------------------------------------------------------------------------------ lint, render


@pytest.mark.parametrize("values_name", ["default", "three-sinks"])
def test_lint_strict_passes(values_name: str) -> None:
    values = VALUE_SETS[values_name]()
    report = helm_python.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert report["errors"] == [], report["errors"]
    assert problems == [], problems


def test_default_values_render_the_core_objects(chart: helm_python.Chart) -> None:
    kinds = sorted(m["kind"] for m in manifests(render(chart)))
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]


def test_three_sinks_example_renders_every_sink(chart: helm_python.Chart) -> None:
    objects = manifests(render(chart, example_values()))
    assert sorted(m["kind"] for m in objects) == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    # `example: null` in the file removes the chart's placeholder sink.
    assert sorted(sink_tomls(objects)) == ["clicks.toml", "orders.toml", "payments.toml"]


# ------------------------------------------------------------------- Kubernetes schema checks


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_validates_against_kubernetes_schema(
    chart: helm_python.Chart, value_set: tuple[str, Values | None], kube_version: str
) -> None:
    name, values = value_set
    validated: list[str] = []
    for m in manifests(render(chart, values)):
        key = (m["apiVersion"], m["kind"])
        if key in CRD_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(m, kube_version, strict=True)
            continue
        try:
            kubernetes_validate.validate(m, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name}: {m['kind']}/{m['metadata']['name']} @ {kube_version}: {e}")
        validated.append(m["kind"])
    print(f"{name} @ Kubernetes {kube_version}: {len(validated)} manifests valid: {validated}")
    assert {"ConfigMap", "Deployment", "Service"} <= set(validated)


def test_service_monitor_has_its_required_fields(chart: helm_python.Chart) -> None:
    objects = manifests(render(chart, all_features_values()))
    sm = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["name"] == FULLNAME
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"[0-9]+(ms|s|m|h)", endpoint["interval"])
    assert re.fullmatch(r"[0-9]+(ms|s|m|h)", endpoint["scrapeTimeout"])


def test_scaled_object_has_one_kafka_trigger_per_topic(chart: helm_python.Chart) -> None:
    values = example_values()
    objects = manifests(render(chart, values))
    so = only(objects, "ScaledObject")
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": only(objects, "Deployment")["metadata"]["name"],
    }
    assert spec["minReplicaCount"] == values["autoscaling"]["minReplicas"]
    assert spec["maxReplicaCount"] == values["autoscaling"]["maxReplicas"]
    triggers = spec["triggers"]
    for t in triggers:
        assert t["type"] == "kafka"
        meta = t["metadata"]
        # KEDA's trigger metadata is map[string]string.
        assert all(isinstance(v, str) for v in meta.values()), meta
        for required in ("bootstrapServers", "consumerGroup", "lagThreshold"):
            assert meta[required], (required, meta)
        assert meta["allowIdleConsumers"] == "false"
    by_group: dict[str, list[str | None]] = {}
    for t in triggers:
        by_group.setdefault(t["metadata"]["consumerGroup"], []).append(t["metadata"].get("topic"))
    assert by_group == {
        "landfall-clicks": [None],  # topics_regex: the group's topics
        "landfall-orders": ["orders"],
        "landfall-payments-lake": ["payments.v1", "refunds.v1"],
    }
    payments = [t for t in triggers if t["metadata"]["consumerGroup"] == "landfall-payments-lake"]
    assert all(t["authenticationRef"] == {"name": "landfall-payments-kafka"} for t in payments)
    assert all(t["metadata"]["sasl"] == "scram_sha512" for t in payments)


def test_hpa_scales_on_each_sinks_group_lag(chart: helm_python.Chart) -> None:
    objects = manifests(render(chart, hpa_values()))
    hpa = only(objects, "HorizontalPodAutoscaler")
    groups = [
        m["external"]["metric"]["selector"]["matchLabels"]["consumergroup"]
        for m in hpa["spec"]["metrics"]
    ]
    assert groups == ["landfall-clicks", "landfall-orders", "landfall-payments-lake"]
    assert {m["external"]["target"]["averageValue"] for m in hpa["spec"]["metrics"]} == {"200000"}
    assert not [m for m in objects if m["kind"] == "ScaledObject"]


def test_autoscaling_leaves_the_replica_count_to_the_autoscaler(
    chart: helm_python.Chart,
) -> None:
    fixed = only(manifests(render(chart)), "Deployment")
    assert fixed["spec"]["replicas"] == 2
    for values in (example_values(), hpa_values()):
        scaled = only(manifests(render(chart, values)), "Deployment")
        assert "replicas" not in scaled["spec"]


# ------------------------------------------------------------------------------ sink configs


def fake_env(objects: list[Manifest]) -> dict[str, str]:
    """Dummy values for every variable the pod would get from a Secret or a plain value."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for var in container(objects).get("env", []):
        env[var["name"]] = var.get("value", f"dummy-{var['name'].lower()}")
    return env


def stage_secret_files(
    objects: list[Manifest], tomls: dict[str, str], root: Path
) -> dict[str, str]:
    """`landfall validate` checks that `[kafka.security]` files (`ca_file`, `password_file`, ...)
    exist. Each such path must lie under a Secret the Deployment mounts; a stand-in file is
    created under `root` and the path in the TOML rewritten to it."""
    mounts = [
        m["mountPath"].rstrip("/") + "/"
        for m in container(objects).get("volumeMounts", [])
        if m["name"].startswith("secret-")
    ]
    staged = {}
    for file_name, text in tomls.items():
        for path in re.findall(r'\b\w+_file = "(/[^"]+)"', text):
            assert any(path.startswith(m) for m in mounts), (
                f"{file_name}: {path} is not under a mounted Secret ({mounts})"
            )
            stand_in = root / path.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("stand-in for a mounted Secret key\n")
            text = text.replace(f'"{path}"', f'"{stand_in}"')
        staged[file_name] = text
    return staged


@pytest.mark.parametrize("values_name", ["default", "three-sinks"])
def test_rendered_sink_tomls_pass_landfall_validate(
    chart: helm_python.Chart, values_name: str, tmp_path: Path
) -> None:
    landfall = os.environ.get("LANDFALL_BIN")
    if not landfall:
        pytest.skip("LANDFALL_BIN is not set (scripts/test.sh sets it to the built landfall)")
    objects = manifests(render(chart, VALUE_SETS[values_name]()))
    tomls = stage_secret_files(objects, sink_tomls(objects), tmp_path / "mounts")
    config_dir = tmp_path / "sinks"
    config_dir.mkdir()
    for file_name, text in tomls.items():
        (config_dir / file_name).write_text(text)
    result = subprocess.run(
        [landfall, "validate", "--config-dir", str(config_dir)],
        env=fake_env(objects),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for file_name in tomls:
        sink = file_name.removesuffix(".toml")
        assert f"{file_name}: ok (sink `{sink}`)" in result.stdout, result.stdout
    print(f"{values_name}: landfall validate ok for {sorted(tomls)}")


def test_landfall_validate_catches_an_unset_secret_variable(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    """The check above is real: without the Secret's variable the same file fails."""
    landfall = os.environ.get("LANDFALL_BIN")
    if not landfall:
        pytest.skip("LANDFALL_BIN is not set (scripts/test.sh sets it to the built landfall)")
    objects = manifests(render(chart, example_values()))
    path = tmp_path / "payments.toml"
    path.write_text(sink_tomls(objects)["payments.toml"])
    env = fake_env(objects)
    del env["KAFKA_SASL_USERNAME"]
    result = subprocess.run(
        [landfall, "validate", "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "environment variable `KAFKA_SASL_USERNAME` is not set" in result.stdout


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_log_format_value_reaches_the_binary(
    chart: helm_python.Chart, tmp_path: Path, log_format: str
) -> None:
    """`log.format` becomes LANDFALL_LOG_FORMAT, and the binary accepts what the chart renders."""
    landfall = os.environ.get("LANDFALL_BIN")
    if not landfall:
        pytest.skip("LANDFALL_BIN is not set (scripts/test.sh sets it to the built landfall)")
    objects = manifests(render(chart, {"log": {"format": log_format}}))
    env = fake_env(objects)
    assert env["LANDFALL_LOG_FORMAT"] == log_format
    config_dir = tmp_path / "sinks"
    config_dir.mkdir()
    for file_name, text in sink_tomls(objects).items():
        (config_dir / file_name).write_text(text)
    result = subprocess.run(
        [landfall, "validate", "--config-dir", str(config_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_log_format_is_refused_by_schema_and_binary(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="format"):
        render(chart, {"log": {"format": "yaml"}})
    landfall = os.environ.get("LANDFALL_BIN")
    if not landfall:
        pytest.skip("LANDFALL_BIN is not set (scripts/test.sh sets it to the built landfall)")
    result = subprocess.run(
        [landfall, "--log-format", "yaml", "validate", "--config", "/nonexistent.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "invalid value 'yaml' for '--log-format" in result.stderr, result.stderr
    assert "[possible values: text, json]" in result.stderr, result.stderr


@pytest.mark.parametrize("values_name", ["default", "three-sinks"])
def test_sink_toml_round_trips_the_values(chart: helm_python.Chart, values_name: str) -> None:
    """Each file parses to exactly the sink's values plus its name: integers stay integers,
    strings with quotes, backslashes and `${...}` survive."""
    values = VALUE_SETS[values_name]()
    sinks = sinks_of(chart, values)
    tomls = sink_tomls(manifests(render(chart, values)))
    for name, sink in sinks.items():
        parsed = tomllib.loads(tomls[f"{name}.toml"])
        assert parsed == {"name": name, **sink}


def test_awkward_strings_and_big_integers_survive(chart: helm_python.Chart) -> None:
    sink = {
        "topics_regex": 'a\\.b"c',
        "kafka": {"bootstrap_servers": "k:9092", "options": {"client.rack": "tab\there ü"}},
        "flush": {"max_file_bytes": 4_294_967_296, "max_records": 1},
        "store": {"url": "s3://b/p"},
        "marker": {"prefix": "s3://b/m"},
    }
    tomls = sink_tomls(manifests(render(chart, {"sinks": {"example": None, "odd": sink}})))
    assert tomllib.loads(tomls["odd.toml"]) == {"name": "odd", **sink}


# ------------------------------------------------------------------------------- Deployment


def test_deployment_probes_security_and_mounts(chart: helm_python.Chart) -> None:
    objects = manifests(render(chart, example_values()))
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    c = container(objects)
    port = c["ports"][0]
    assert port == {"name": "http", "containerPort": 9464, "protocol": "TCP"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["args"] == [
        "run",
        "--config-dir",
        "/etc/landfall/sinks",
        "--metrics-addr",
        "0.0.0.0:9464",
    ]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False

    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    sinks_volume = volumes[mounts["/etc/landfall/sinks"]]
    assert sinks_volume["configMap"]["name"] == only(objects, "ConfigMap")["metadata"]["name"]
    assert volumes[mounts["/etc/landfall/kafka-ca"]]["secret"]["secretName"] == "landfall-kafka-ca"


def test_secrets_reach_the_pod_only_by_secret_reference(chart: helm_python.Chart) -> None:
    values = example_values()
    objects = manifests(render(chart, values))
    env = {e["name"]: e for e in container(objects)["env"]}
    for item in values["secretEnv"]:
        assert env[item["name"]] == {
            "name": item["name"],
            "valueFrom": {"secretKeyRef": {"name": item["secretName"], "key": item["key"]}},
        }
    payments = sink_tomls(objects)["payments.toml"]
    assert "${KAFKA_SASL_USERNAME}" in payments
    # The password is a file of a mounted Secret, named by path only.
    assert 'password_file = "/etc/landfall/kafka-sasl/password"' in payments
    mounts = {m["mountPath"]: m for m in container(objects)["volumeMounts"]}
    assert mounts["/etc/landfall/kafka-sasl"]["readOnly"] is True
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    volume = next(
        v for v in pod["volumes"] if v["name"] == mounts["/etc/landfall/kafka-sasl"]["name"]
    )
    assert volume["secret"] == {
        "secretName": "landfall-kafka-sasl",
        "defaultMode": 288,
        "items": [{"key": "password", "path": "password"}],
    }
    assert not [m for m in objects if m["kind"] == "Secret"]


@pytest.mark.parametrize("key", ["password", "client_secret", "key_password"])
def test_schema_refuses_an_inline_kafka_secret(chart: helm_python.Chart, key: str) -> None:
    """[kafka.security] secrets reach a sink only as ${ENV} (secretEnv) or a *_file path."""
    values: Values = {
        "sinks": {"example": {"kafka": {"security": {"protocol": "sasl_ssl", key: "hunter2"}}}}
    }
    with pytest.raises(helm_python.HelmValuesError, match=key):
        render(chart, values)


@pytest.mark.parametrize("name", ["KAFKA_PASSWORD", "AWS_SECRET_ACCESS_KEY", "api_token"])
def test_schema_refuses_secret_looking_plain_env(chart: helm_python.Chart, name: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=name):
        render(chart, {"env": {name: "hunter2"}})


def test_render_names_a_sink_variable_nobody_provides(chart: helm_python.Chart) -> None:
    values = example_values()
    values["secretEnv"] = [e for e in values["secretEnv"] if e["name"] != "KAFKA_SASL_USERNAME"]
    with pytest.raises(helm_python.HelmRenderError, match=r"\$\{KAFKA_SASL_USERNAME\}"):
        render(chart, values)
    values["envFromSecrets"] = ["landfall-kafka-sasl"]  # keys unknown to the chart: no check
    render(chart, values)


def test_escaped_dollar_needs_no_variable(chart: helm_python.Chart) -> None:
    """`$${X}` is Landfall's literal `${X}`: nothing to provide."""
    values: Values = {"sinks": {"example": {"kafka": {"options": {"client.id": "$${X}"}}}}}
    tomls = sink_tomls(manifests(render(chart, values)))
    assert 'client.id" = "$${X}"' in tomls["example.toml"]


@pytest.mark.parametrize("values_name", ["default", "three-sinks"])
def test_grace_period_follows_the_largest_shutdown_timeout(
    chart: helm_python.Chart, values_name: str
) -> None:
    values = VALUE_SETS[values_name]()
    pod = only(manifests(render(chart, values)), "Deployment")["spec"]["template"]["spec"]
    expected = expected_grace_seconds(sinks_of(chart, values))
    assert pod["terminationGracePeriodSeconds"] == expected
    assert expected == {"default": 30, "three-sinks": 50}[values_name]


def test_grace_period_rounds_up_and_adds_the_margin(chart: helm_python.Chart) -> None:
    values = example_values()
    values["sinks"]["orders"]["runtime"]["shutdown_timeout_ms"] = 120_001
    values["shutdown"] = {"graceMarginSeconds": 5}
    pod = only(manifests(render(chart, values)), "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 121 + 5


def test_notes_print_the_memory_limit_to_set(chart: helm_python.Chart) -> None:
    """1.5 x the sum of the sinks' budgets + 64 MiB: what the 1,000-partition benchmark measured
    beyond the budget (docs/benchmarks.md)."""
    values = example_values()
    # A null sink removes the chart's default one (Helm's way of deleting a key).
    live = [sink for sink in values["sinks"].values() if sink is not None]
    for sink in live:
        sink.setdefault("runtime", {})["max_buffered_bytes"] = 256 << 20
    values["sinks"]["orders"]["runtime"]["max_buffered_bytes"] = 1 << 30
    notes = next(t for p, t in render(chart, values).items() if p.endswith("NOTES.txt"))
    sinks = len(live)
    budget_mib = 1024 + 256 * (sinks - 1)
    assert f"buffer up to {budget_mib} MiB together" in notes
    assert f"1.5 x that + 64 MiB = {budget_mib * 3 // 2 + 64} MiB" in notes


def checksum(chart: helm_python.Chart, values: Values | None) -> str:
    deployment = only(manifests(render(chart, values)), "Deployment")
    value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/sinks"]
    return value


def test_checksum_annotation_rolls_pods_on_a_sink_change_only(chart: helm_python.Chart) -> None:
    base = example_values()
    before = checksum(chart, base)
    assert re.fullmatch(r"[0-9a-f]{64}", before)
    assert checksum(chart, copy.deepcopy(base)) == before

    changed = copy.deepcopy(base)
    changed["sinks"]["orders"]["flush"]["max_age_ms"] = 30_000
    assert checksum(chart, changed) != before

    added = copy.deepcopy(base)
    added["sinks"]["audit"] = {
        "topics": ["audit"],
        "kafka": {"bootstrap_servers": "kafka:9092"},
        "store": {"url": "s3://acme-lake/raw/audit-sink"},
        "marker": {"prefix": "s3://acme-lake/_landfall"},
    }
    assert checksum(chart, added) != before

    unrelated = copy.deepcopy(base)
    unrelated["autoscaling"]["maxReplicas"] = 20
    assert checksum(chart, unrelated) == before


# ----------------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("values", "mentions"),
    [
        ({"replicaCont": 3}, "replicaCont"),
        ({"sinks": {"example": {"kafka": {"bootstrap_server": "k:9092"}}}}, "bootstrap_server"),
        ({"sinks": {"example": {"runtime": {"shutdown_timeout": 1000}}}}, "shutdown_timeout"),
        ({"sinks": {"example": {"name": "other"}}}, "name"),
        ({"sinks": {"example": {"flush": {"max_age_ms": "60s"}}}}, "max_age_ms"),
        ({"sinks": {"example": {"kafka": {"start_from": "newest"}}}}, "start_from"),
        ({"sinks": {"bad/name": {"kafka": {}, "store": {}, "marker": {}}}}, "bad/name"),
        ({"podDisruptionBudget": {"maxUnavaliable": 1}}, "maxUnavaliable"),
        ({"autoscaling": {"keda": {"enable": True}}}, "enable"),
    ],
)
def test_schema_rejects_typos_and_wrong_types(
    chart: helm_python.Chart, values: Values, mentions: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(mentions)):
        chart.validate_schema(chart.merge_values(values))
    with pytest.raises(helm_python.HelmValuesError):
        render(chart, values)
    report = helm_python.lint(CHART_DIR, values, strict=True)
    assert report["errors"], report


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"autoscaling": {"keda": {"enabled": True}, "hpa": {"enabled": True}}},
            "at most one of autoscaling.keda and autoscaling.hpa",
        ),
        ({"autoscaling": {"perSink": {"exmaple": {"lagThreshold": 5}}}}, "perSink.exmaple"),
        ({"podDisruptionBudget": {"minAvailable": 1}}, "only one of podDisruptionBudget"),
        (
            {"autoscaling": {"minReplicas": 0, "hpa": {"enabled": True}}},
            "minReplicas must be at least 1 with autoscaling.hpa",
        ),
    ],
)
def test_render_refuses_combinations_that_cannot_work(
    chart: helm_python.Chart, values: Values, message: str
) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        render(chart, values)


# ------------------------------------------------------------------------------------ README

# Values whose content is a Kubernetes (or Landfall) object passed through: the README lists
# the value itself, not every key inside.
PASSTHROUGH = {
    "sinks",
    "resources",
    "podSecurityContext",
    "securityContext",
    "livenessProbe",
    "readinessProbe",
    "updateStrategy",
    "autoscaling.behavior",
}


def value_paths(values: Values, prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in PASSTHROUGH:
            yield from value_paths(value, f"{path}.")
        else:
            yield path


def test_readme_lists_every_value() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    defaults: Values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    paths = list(value_paths(defaults))
    missing = [p for p in paths if f"| `{p}` |" not in readme]
    assert not missing, f"values missing from the README's table: {missing}"
    assert len(paths) > 50


def documented_sink_keys() -> dict[str, set[str]]:
    """Keys per table from docs/configuration.md's key tables ("" is the root table)."""
    doc = (REPO / "docs" / "configuration.md").read_text()
    keys: dict[str, set[str]] = {}
    table: str | None = None
    for line in doc.splitlines():
        heading = re.fullmatch(r"### (?:Root|`\[(\w+(?:\.\w+)?)\]`)", line)
        if heading:
            table = heading.group(1) or ""
            keys[table] = set()
        elif line.startswith("## "):
            table = None
        elif table is not None and (row := re.match(r"\| `([a-z_]+)(?:\[\]\.\w+)?` \|", line)):
            keys[table].add(row.group(1))
    return keys


def test_schema_knows_exactly_the_documented_sink_keys(chart: helm_python.Chart) -> None:
    """The schema mirrors Landfall's config: a key added to (or removed from) Landfall and its
    docs must be added to (or removed from) values.schema.json's `sink` definition too."""
    schema = chart.schema
    assert schema is not None
    sink = schema["definitions"]["sink"]
    in_schema = {"": set(sink["properties"]) | {"name"}}
    for table, table_schema in sink["properties"].items():
        if table_schema.get("type") == "object":
            in_schema[""].discard(table)
            in_schema[table] = set(table_schema["properties"])
            # A nested table (`[kafka.security]`) has its own key table in the docs.
            for sub, sub_schema in table_schema["properties"].items():
                if sub_schema.get("type") == "object":
                    in_schema[table].discard(sub)
                    in_schema[f"{table}.{sub}"] = set(sub_schema["properties"])
    documented = documented_sink_keys()
    assert len(documented) == 13, documented
    assert in_schema == documented
