"""The best hyper-parameters of a study as a change of the config, for a person to review.

`make tune` never applies what it finds: it writes the values into `train.<estimator>` of
the config file (comments and layout kept: `params_file`), prints the diff, and leaves the
review, the commit and the `make run` that retrains with them (DVC sees the changed
params) to the person reading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines.params_file import set_values, unified_diff

if TYPE_CHECKING:
    from pipelines.tune import Outcome


@dataclass(frozen=True)
class Proposal:
    """The diff of the config file, and whether it was written."""

    path: Path
    diff: str
    written: bool


def propose(config: Path, estimator: str, params: dict[str, Any], write: bool) -> Proposal:
    """Set `train.<estimator>.<name>` to `params` in `config` when `write`; return the diff."""
    before = config.read_text()
    current = ((yaml.safe_load(before) or {}).get("train") or {}).get(estimator) or {}
    changes: dict[str, object] = {
        f"train.{estimator}.{k}": v for k, v in params.items() if current.get(k) != v
    }
    after = set_values(before, changes) if changes else before
    diff = unified_diff(config, before, after)
    if diff and write:
        config.write_text(after)
    return Proposal(config, diff, bool(diff) and write)


def describe(outcome: Outcome, proposal: Proposal) -> str:
    """What `python -m pipelines tune` prints: the trials, the figures, the diff, what next."""
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(outcome.states.items()))
    configured = (
        f"{outcome.configured_value:.4f}"
        if outcome.configured_value is not None
        else "not in the study (outside the search space, or pruned)"
    )
    lines = [
        f"study {outcome.study} in {outcome.storage}: {sum(outcome.states.values())} trials "
        f"this run ({states or 'none'}), {outcome.total} in the study",
        f"mean average precision over the folds: best {outcome.best_value:.4f} "
        f"(trial {outcome.best_number}), configured {configured}",
        f"MLflow: the trials are nested runs of parent run {outcome.parent_run_id}",
    ]
    path = proposal.path
    if not proposal.diff:
        lines.append(f"{path} already holds the best hyper-parameters found: nothing to change")
        return "\n".join(lines)
    lines.append(proposal.diff.rstrip("\n"))
    if proposal.written:
        lines.append(
            f"{path}: written. Review the change (git diff {path}), commit it, then "
            "`make run` (DVC sees the new params and retrains)."
        )
    else:
        lines.append(f"--dry-run: {path} left as it is (rerun without --dry-run to write it)")
    return "\n".join(lines)
