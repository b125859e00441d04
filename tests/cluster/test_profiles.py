"""Profiles: Dask config sources, the shipped defaults and their schema, and the docs."""

from __future__ import annotations

import re
from pathlib import Path

import dask.config
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from suanli import cluster
from suanli.cluster.spec import spec_fields
from suanli.pipelines.cli import main

PACKAGE = Path(cluster.__file__).parent
DOCS = Path(__file__).parents[2] / "docs" / "clusters.md"


def _schema() -> dict:
    return yaml.safe_load((PACKAGE / "cluster-schema.yaml").read_text())


def test_shipped_defaults_match_the_schema() -> None:
    defaults = yaml.safe_load((PACKAGE / "cluster.yaml").read_text())
    jsonschema.validate(defaults, _schema())
    for name in defaults["suanli"]["cluster"]["profiles"]:
        assert cluster.plan(name).kind


def test_schema_describes_every_spec_field_and_nothing_else() -> None:
    profile = _schema()["$defs"]["profile"]["properties"]
    assert set(profile) == set(spec_fields())
    from suanli.cluster.spec import HOST_KEYS, SPILL_KEYS, SSH_KEYS, TLS_KEYS

    assert set(profile["ssh"]["properties"]) == set(SSH_KEYS)
    assert set(profile["spill"]["properties"]) == set(SPILL_KEYS)
    assert set(profile["tls"]["properties"]) == set(TLS_KEYS)
    assert set(profile["hosts"]["items"]["oneOf"][1]["properties"]) == set(HOST_KEYS)


def test_schema_rejects_what_validation_rejects() -> None:
    bad = {"suanli": {"cluster": {"profiles": {"x": {"kind": "local", "wokers": 2}}}}}
    with pytest.raises(jsonschema.ValidationError, match="wokers"):
        jsonschema.validate(bad, _schema())
    with dask.config.set({"suanli.cluster.profiles.x": {"kind": "local", "wokers": 2}}), \
            pytest.raises(cluster.ClusterSpecError, match=r"profiles\.x\.wokers"):
        cluster.plan("x")


def test_profiles_from_environment_variables() -> None:
    collected = dask.config.collect(paths=[], env={
        "DASK_SUANLI__CLUSTER__PROFILES__ENVLAB__KIND": "local",
        "DASK_SUANLI__CLUSTER__PROFILES__ENVLAB__WORKERS": "3",
        "DASK_SUANLI__CLUSTER__PROFILES__ENVLAB__IDLE_TIMEOUT": "10 minutes",
    })
    with dask.config.set(collected):
        spec = cluster.plan("envlab")
    assert spec.workers == 3 and spec.idle_timeout == "10 minutes"


def test_profiles_from_a_user_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "suanli.yaml").write_text(
        "suanli:\n  cluster:\n    profiles:\n      mine: {kind: local, workers: 5}\n")
    with dask.config.set(dask.config.collect(paths=[str(tmp_path)], env={})):
        assert cluster.plan("mine").workers == 5


def _documented_profiles() -> dict[str, dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)
    documented = [yaml.safe_load(b) for b in blocks]
    return next(d for d in documented if "profiles" in d["suanli"]["cluster"])


def test_docs_show_a_valid_profile_for_every_kind() -> None:
    documented = _documented_profiles()
    jsonschema.validate(documented, _schema())
    profiles = documented["suanli"]["cluster"]["profiles"]
    builtin = {"local", "auto", "local-cuda", "ssh", "shared", "ec2", "gcp", "azure",
               "kubernetes", "slurm", "pbs"}
    assert {p["kind"] for p in profiles.values()} == builtin
    with dask.config.set({"suanli.cluster.profiles": profiles}):
        for name in profiles:
            launch = cluster.launch_plan(name)  # validated, rendered, nothing started
            assert launch.call and launch.arguments, name


def test_plan_command_prints_spec_launch_and_job_script() -> None:
    profiles = _documented_profiles()["suanli"]["cluster"]["profiles"]
    runner = CliRunner()
    with dask.config.set({"suanli.cluster.profiles": profiles}):
        planned = runner.invoke(main, ["cluster", "plan", "hpc", "--set", "workers=8"])
        assert planned.exit_code == 0, planned.output
        assert "call: dask_jobqueue.SLURMCluster" in planned.output
        assert "#SBATCH -p compute" in planned.output and "workers: 8" in planned.output
        k8s = runner.invoke(main, ["cluster", "plan", "k8s"])
        assert "kind: DaskCluster" in k8s.output and "nvidia.com/gpu: 1" in k8s.output
        bad = runner.invoke(main, ["cluster", "plan", "laptop", "--set", "workers=0"])
        assert bad.exit_code == 2 and "'workers' = 0" in bad.output
        unknown = runner.invoke(main, ["cluster", "plan", "nonesuch"])
        assert unknown.exit_code == 2 and "profile" in unknown.output


def test_certs_command_writes_a_ca_and_private_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["cluster", "certs", str(tmp_path / "c"), "--name", "alice"])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "c" / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE")
    assert (tmp_path / "c" / "alice-key.pem").stat().st_mode & 0o777 == 0o600
    profile = yaml.safe_load(made.output.split("alice:\n", 1)[1])
    assert profile["tls"]["cert"] == str(tmp_path / "c" / "alice.pem")
    again = runner.invoke(main, ["cluster", "certs", str(tmp_path / "c"), "--name", "alice"])
    assert again.exit_code == 2 and "not overwriting" in again.output
