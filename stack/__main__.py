"""`python -m stack up|down|status`: the CLI behind `make up`, `make down`,
`make status`. A failure exits 1 with the reason and the log to read."""

from __future__ import annotations

import argparse
import sys
import time

from pipelines.errors import FraudOpsError
from pipelines.flows import deployments
from stack import processes
from stack.services import Service, base_env, services
from stack.settings import StackSettings, load_stack_settings

NEXT = "prefect deployment run 'fraud-lifecycle/local' --watch"


def _say(message: str) -> None:
    print(message, flush=True)


class _Starter:
    """Starts the services that are not running, in dependency order, and waits for each."""

    def __init__(self, s: StackSettings, todo: list[Service], plan: deployments.Plan) -> None:
        self.s, self.plan = s, plan
        self.todo = {svc.name: svc for svc in todo}
        self.started: dict[str, processes.Started] = {}
        self.launched: dict[str, float] = {}

    def launch(self, name: str) -> None:
        if name in self.todo:
            svc = self.todo[name]
            _say(f"starting {svc.title} (log: {self.log(name)})")
            self.launched[name] = time.monotonic()
            proc = processes.start(self.s.run_dir, name, svc.argv, svc.env, self.s.root)
            self.started[name] = processes.Started(svc.title, proc, self.log(name))

    def wait(self, name: str) -> None:
        if name in self.started:
            svc = self.todo[name]
            left = self.s.start_timeout_s - (time.monotonic() - self.launched[name])
            others = self.started.values()
            processes.wait_healthy(self.started[name], svc.healthy, left, others)
            _say(f"  {svc.title} ready {time.monotonic() - self.launched[name]:.0f} s after start")

    def log(self, name: str) -> str:
        return str(processes.log_file(self.s.run_dir, name).relative_to(self.s.root))

    def run(self) -> None:
        self.launch("mlflow")  # the two servers start side by side: each takes seconds
        self.launch("prefect")
        self.wait("prefect")
        env = base_env(self.s)
        if "prefect" in self.started:
            deployments.create_pool(self.plan, self.s.root, env, self.s.run_dir)
        self.launch("worker")
        if "prefect" in self.started:
            _say(f"deploying {', '.join(self.plan.names)} (log: .run/logs/deploy.log)")
            deployments.deploy(self.plan, self.s.root, env, self.s.run_dir)
        self.wait("mlflow")
        self.launch("serving")
        self.wait("serving")
        self.wait("worker")


def _urls(s: StackSettings, stack: list[Service]) -> None:
    for svc in stack:
        if svc.url:
            _say(f"  {svc.title:<16} {svc.url}")


def up(s: StackSettings) -> int:
    """Start what is not running; say which port is taken, or which service failed."""
    plan = deployments.plan(s.root)
    stack = services(s, plan.pool)
    todo = [svc for svc in stack if processes.running(s.run_dir, svc.name) is None]
    if not todo:
        _say("the stack is already up (make status; make down to stop it):")
        _urls(s, stack)
        return 0
    for svc in todo:
        processes.pid_file(s.run_dir, svc.name).unlink(missing_ok=True)  # stale
        if svc.port is not None and processes.port_in_use(svc.port):
            print(
                f"error: port {svc.port} ({svc.port_variable}, for the {svc.title}) is already "
                f"in use: stop what listens there or set {svc.port_variable} to a free port",
                file=sys.stderr,
            )
            return 1
    if plan.skipped:
        _say(f"not deployed (entrypoint not in this checkout): {', '.join(plan.skipped)}")
    starter = _Starter(s, todo, plan)
    try:
        starter.run()
    except (processes.StartError, deployments.DeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        for line in processes.tail(s.root / exc.log):
            print(f"  | {line}", file=sys.stderr)
        processes.stop([one.proc for one in starter.started.values()], s.stop_timeout_s)
        for name in starter.started:
            processes.pid_file(s.run_dir, name).unlink(missing_ok=True)
        names = ", ".join(starter.started) or "nothing"
        print(f"stopped what this command had started: {names}", file=sys.stderr)
        return 1
    _say("the stack is up:")
    _urls(s, stack)
    _say("next:")
    _say(f"  export PREFECT_API_URL={s.prefect_api_url} MLFLOW_TRACKING_URI={s.mlflow_url}")
    _say(f"  uv run {NEXT}")
    return 0


def down(s: StackSettings) -> int:
    """Stop exactly the processes the pid files name (and their children)."""
    names = ["serving", "worker", "prefect", "mlflow"]
    found = {n: p for n in names if (p := processes.running(s.run_dir, n)) is not None}
    killed = processes.stop(list(found.values()), s.stop_timeout_s)
    for name in names:
        processes.pid_file(s.run_dir, name).unlink(missing_ok=True)
    if not found:
        _say("the stack is not running")
        return 0
    forced = f" ({len(killed)} process(es) killed after {s.stop_timeout_s:.0f} s)" if killed else ""
    _say(f"stopped: {', '.join(found)}{forced}")
    return 0


def status(s: StackSettings) -> int:
    """One line per service: running (pid, ready or not) or stopped."""
    stack = services(s, deployments.plan(s.root).pool)
    up_count = 0
    for svc in stack:
        proc = processes.running(s.run_dir, svc.name)
        if proc is None:
            _say(f"  {svc.title:<40} stopped")
            continue
        up_count += 1
        health = "ready" if svc.healthy() else "NOT READY"
        _say(f"  {svc.title:<40} pid {proc.pid:<8} {health:<10} {svc.url}".rstrip())
    if up_count < len(stack):
        _say(f"{up_count} of {len(stack)} running: make up starts the others")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command, read the settings, run it."""
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        s = load_stack_settings()
        command = {"up": up, "down": down, "status": status}[args.command]
        return command(s)
    except FraudOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
