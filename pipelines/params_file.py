"""Edit values in a YAML config as a person would: comments, key order and layout kept.

The one writer of `configs/*.yaml` values: a run's overrides (`versioning.run_params`) and the
hyper-parameters `make tune` proposes both go through it. It is a ruamel.yaml round trip
(DVC's own YAML library), so the diff of an edit shows only the values that changed.
"""

from __future__ import annotations

import difflib
import io
from pathlib import Path


def set_values(text: str, values: dict[str, object]) -> str:
    """`text` (a YAML document) with dotted keys set to `values`: a null stays `null`, a
    list or map written inline stays inline, every comment stays where it was."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 4096
    yaml_rt.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    data = yaml_rt.load(text)
    for dotted, value in values.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        old, new = node.get(leaf), value
        if isinstance(value, list | dict):
            new = CommentedSeq(value) if isinstance(value, list) else CommentedMap(value)
            inline = (
                not isinstance(old, CommentedSeq | CommentedMap) or old.fa.flow_style() or not old
            )
            if inline:
                new.fa.set_flow_style()
        node[leaf] = new
    out = io.StringIO()
    yaml_rt.dump(data, out)
    return out.getvalue()


def write_params(config: Path, values: dict[str, object]) -> None:
    """Set dotted keys in the YAML file `config` (see `set_values`)."""
    config.write_text(set_values(config.read_text(), values))


def unified_diff(path: Path, before: str, after: str) -> str:
    """The change from `before` to `after` as `git diff` shows it (empty when none)."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path.as_posix()}",
        tofile=f"b/{path.as_posix()}",
    )
    return "".join(lines)
