"""The deployments of `prefect.yaml` on a Prefect server: create the process work pool,
deploy every deployment whose entrypoint file exists, and check that a worker polls the pool.

This drives the `prefect` CLI (the documented path a user would take by hand) and reads the
server's REST API; it does not import Prefect.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError, FraudOpsError

PREFECT_FILE = Path("prefect.yaml")


class DeployError(FraudOpsError):
    """The Prefect CLI could not create the work pool or the deployments."""

    def __init__(self, message: str, log: Path) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class Plan:
    """What to deploy: the selected deployments and the one work pool they run on."""

    pool: str
    names: list[str]  # "entrypoint (deployment name)" of each selected deployment
    skipped: list[str]  # the same, for those whose entrypoint file is not here (yet)
    config: dict[str, Any]  # prefect.yaml with the selected deployments only


def plan(root: Path, prefect_file: Path = PREFECT_FILE) -> Plan:
    """Select the deployments of `prefect_file` whose entrypoint file exists under `root`."""
    try:
        config = yaml.safe_load((root / prefect_file).read_text()) or {}
        deployments = list(config["deployments"])
        pools = {d["work_pool"]["name"] for d in deployments}
        files = [d["entrypoint"].partition(":")[0] for d in deployments]
        labels = [f"{d['entrypoint']} ({d['name']})" for d in deployments]
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{prefect_file}: not a readable list of deployments ({exc})") from None
    if len(pools) != 1:
        raise ConfigError(f"{prefect_file}: the stack runs one work pool; found {sorted(pools)}")
    chosen: list[dict[str, Any]] = []
    names: list[str] = []
    skipped: list[str] = []
    for d, file, label in zip(deployments, files, labels, strict=True):
        exists = (root / file).is_file()
        (names if exists else skipped).append(label)
        if exists:
            chosen.append(d)
    return Plan(pools.pop(), names, skipped, {**config, "deployments": chosen})


def _prefect(args: list[str], root: Path, env: dict[str, str], log: Path) -> None:
    prefect = str(Path(sys.executable).parent / "prefect")
    with log.open("ab") as out:
        done = subprocess.run(
            [prefect, "--no-prompt", *args],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        command = f"prefect {' '.join(args)}"
        raise DeployError(f"`{command}` failed (code {done.returncode}); its log: {log}", log)


def _log(run_dir: Path) -> Path:
    log = run_dir / "logs" / "deploy.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return log


def create_pool(the_plan: Plan, root: Path, env: dict[str, str], run_dir: Path) -> None:
    """Create the process work pool unless the server has it (kept as you configured it)."""
    if _get(f"{env['PREFECT_API_URL']}/work_pools/{the_plan.pool}") is not None:
        return
    pool = ["work-pool", "create", the_plan.pool, "--type", "process"]
    _prefect(pool, root, env, _log(run_dir))


def deploy(the_plan: Plan, root: Path, env: dict[str, str], run_dir: Path) -> None:
    """Create or update the selected deployments (`prefect deploy --all` on them)."""
    selected = run_dir / "prefect.deploy.yaml"  # prefect.yaml minus what is not here yet
    selected.write_text(yaml.safe_dump(the_plan.config, sort_keys=False))
    _prefect(["deploy", "--all", "--prefect-file", str(selected)], root, env, _log(run_dir))


def _get(url: str, body: bytes | None = None) -> Any:
    """The JSON answer of a GET (or a POST of `body`), or None when there is none."""
    method = "GET" if body is None else "POST"
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def worker_online(api_url: str, pool: str, worker: str) -> bool:
    """True when worker `worker` polls `pool` (the server reports it ONLINE)."""
    workers = _get(f"{api_url}/work_pools/{pool}/workers/filter", b"{}") or []
    return any(w.get("name") == worker and w.get("status") == "ONLINE" for w in workers)
