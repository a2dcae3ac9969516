"""Steps `promote` and `rollback`: move the `champion` alias, with an audit record each time.

Every alias change is written on the model versions involved as a tag `audit.<timestamp>`
(who, when, why, from, to, metrics before and after, whether it was forced), and the sequence
of champions is kept on the registered model (`fraudops.champion_history`) so a rollback is
one command.

Only a usable version (complete, and passed by the gate: `pipelines.version_status`) becomes
champion; anything else is refused, changing nothing, unless forced, and a forced change
records what it overrode.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from pipelines import tracking, version_status
from pipelines.errors import FraudOpsError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY = "fraudops.champion_history"


class RegistryError(FraudOpsError):
    """A promotion or rollback that cannot be done; nothing was changed."""


def _history(name: str) -> list[int]:
    return [int(v) for v in json.loads(tracking.model_tag(name, HISTORY) or "[]")]


def _audit(name: str, versions: set[int], record: dict[str, object]) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    for version in versions:
        tracking.set_version_tags(name, version, {f"audit.{stamp}": tracking.to_json(record)})


def _check(action: str, name: str, version: int, force: bool) -> str | None:
    """What makes `version` unusable (None if nothing); refused unless `force`."""
    problem = version_status.problem(tracking.get_version(name, version))  # raises if missing
    if problem and not force:
        raise RegistryError(
            f"{action} {name!r}: {problem}; champion unchanged "
            "(--force, with a --reason, overrides this and is audited)"
        )
    if problem:
        log.warning("%s: forced past: %s", action, problem)
    return problem


def _metrics(name: str, version: int | None) -> dict[str, float] | None:
    if version is None:
        return None
    raw = tracking.get_version(name, version).tags.get("fraudops.test_metrics")
    return json.loads(raw) if raw else None


def promote(
    name: str,
    version: int,
    reason: str,
    actor: str,
    metrics_after: dict[str, float] | None = None,
    metrics_before: dict[str, float] | None = None,
    force: bool = False,
) -> None:
    """Make `version` the champion; record who, when, why and the metrics around it.

    A version that is incomplete, has no gate verdict or failed the gate is refused
    (`RegistryError`, nothing changed) unless `force`; the audit records `forced` and what
    was overridden.
    """
    if not reason.strip():
        raise RegistryError("promote: a reason is required")
    previous = tracking.alias_version(name, CHAMPION)
    if previous == version:
        raise RegistryError(f"promote: version {version} of {name!r} is already champion")
    overrode = _check("promote", name, version, force)
    before = metrics_before if metrics_before is not None else _metrics(name, previous)
    after = metrics_after if metrics_after is not None else _metrics(name, version)
    tracking.set_alias(name, CHAMPION, version)
    tracking.set_model_tag(name, HISTORY, json.dumps([*_history(name), version]))
    _audit(
        name,
        {version} | ({previous} if previous else set()),
        {
            "action": "promote",
            "alias": CHAMPION,
            "from": previous,
            "to": version,
            "who": actor,
            "when": dt.datetime.now(dt.UTC).isoformat(),
            "why": reason,
            "forced": force,
            "overrode": overrode,
            "metrics_before": before,
            "metrics_after": after,
        },
    )
    log.info("promote: %s champion %s -> %d (%s)", name, previous, version, reason)


def rollback(name: str, reason: str, actor: str, force: bool = False) -> int:
    """Give `champion` back to the previous champion; return that version.

    The previous champion must be usable, as for `promote` (a forced champion may not be),
    unless `force`.
    """
    history = _history(name)
    current = tracking.alias_version(name, CHAMPION)
    if len(history) < 2 or current is None:
        raise RegistryError(f"rollback: {name!r} has no previous champion to roll back to")
    target = history[-2]
    overrode = _check("rollback", name, target, force)
    tracking.set_alias(name, CHAMPION, target)
    tracking.set_model_tag(name, HISTORY, json.dumps(history[:-1]))
    _audit(
        name,
        {current, target},
        {
            "action": "rollback",
            "alias": CHAMPION,
            "from": current,
            "to": target,
            "who": actor,
            "when": dt.datetime.now(dt.UTC).isoformat(),
            "why": reason,
            "forced": force,
            "overrode": overrode,
            "metrics_before": _metrics(name, current),
            "metrics_after": _metrics(name, target),
        },
    )
    log.info("rollback: %s champion %d -> %d (%s)", name, current, target, reason)
    return target
