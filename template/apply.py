"""Make this project yours: its identity, its data source, and whether it keeps container files.

`make init NAME="Acme Risk" SLUG=acme-risk` runs this script on a plain clone; Copier runs it
as a task after every render (`copier copy`, `copier update`) with the answers of `copier.yml`.
It is idempotent: every step sets a value, so running it again with the same answers changes
nothing. It reads the current identity from `configs/project.yaml`, so it can also rename a
project that was renamed before. Standard library only: it runs before any install.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path("configs/project.yaml")
PIPELINE = Path("configs/pipeline.yaml")
FIELDS = ("name", "slug", "experiment_name", "monitoring_experiment_name", "registered_model_name")
SLUG = re.compile(r"^[a-z][a-z0-9-]*$")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]*$")  # strings YAML reads back as strings ...
NOT_PLAIN = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}  # ... but these


@dataclass(frozen=True)
class Place:
    """One place the identity is written: in files matching `glob`, text matching `pattern`
    becomes `replacement`. `{field}` in `pattern` stands for the current value of a field of
    `configs/project.yaml` (regex-escaped), in `replacement` for its new value."""

    glob: str
    pattern: str
    replacement: str


# TEMPLATE: every place the project's identity is written; add a Place when you add one.
# (`configs/project.yaml` itself is rewritten key by key; every other file reads it.)
PLACES: tuple[Place, ...] = (
    Place("pyproject.toml", r'(?m)^name = "{slug}"', 'name = "{slug}"'),
    Place(  # the project's own entry in the lock, so `uv sync --frozen` installs it
        "uv.lock",
        r'name = "{slug}"(?=\nversion = "[^"\n]*"\nsource = \{{ editable = "\." \}})',
        'name = "{slug}"',
    ),
    # The README's title; its prose names the template (fraudops) and stays as it is.
    Place("README.md", r"(?m)^# {name}$", "# {name}"),
    *(  # not followed by "/": `fraud-monitoring/hourly` names the Prefect flow's deployment
        Place("README.md", rf"(?<![\w.-]){{{field}}}(?![\w/-])", f"{{{field}}}")
        for field in ("registered_model_name", "monitoring_experiment_name")
    ),
    Place("docker/compose.yaml", r"(?m)^name: {slug}$", "name: {slug}"),  # compose project
    *(
        Place(path, rf"(?<![\w.-]){{{field}}}(?![\w-])", f"{{{field}}}")
        for path in (".env.example", "*/.env.example")
        for field in ("registered_model_name", "monitoring_experiment_name", "slug")
    ),
)
# TEMPLATE: what "no container files" removes: by pattern, so files added later are covered.
CONTAINER_PATTERNS = (
    "docker",
    ".dockerignore",
    "**/*Dockerfile*",
    "**/compose*.yaml",
    "**/compose*.yml",
    "tests/container",
    "tests/compose",
    "tests/**/test_*docker*.py",
    "tests/**/test_*compose*.py",
    "tests/**/test_*container*.py",
)


class InitError(Exception):
    """An answer that cannot become a project setting."""


def yaml_scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when safe, else double-quoted (JSON is valid YAML)."""
    plain = PLAIN.fullmatch(value) and value.lower() not in NOT_PLAIN
    return value if plain else json.dumps(value)


def literal(text: str) -> Callable[[re.Match[str]], str]:
    """A replacement that inserts `text` as it is (no backslash or group processing)."""
    return lambda _match: text


def keep_comment(value: str) -> Callable[[re.Match[str]], str]:
    """A replacement of `(key: )(value)( # comment)` that sets the value, keeps the comment."""
    return lambda m: m.group(1) + value + (m.group(3) or "")


def read_identity(root: Path) -> dict[str, str]:
    """The current identity: the fields of `configs/project.yaml`."""
    text = (root / PROJECT).read_text()
    found = {}
    for field in FIELDS:
        match = re.search(rf"(?m)^{field}: (.*?)\s*$", text)
        if not match:
            raise InitError(f"{PROJECT}: no line '{field}: ...'")
        raw = match.group(1)
        quoted = raw.startswith('"')
        found[field] = json.loads(raw) if quoted else re.sub(r"\s+#.*$", "", raw)
    return found


def write_identity(root: Path, new: dict[str, str]) -> None:
    """Rewrite the identity in `configs/project.yaml` and in every `PLACES` file."""
    old = read_identity(root)
    text = (root / PROJECT).read_text()
    for field in FIELDS:
        line = f"{field}: {yaml_scalar(new[field])}"
        text = re.sub(rf"(?m)^{field}: .*$", literal(line), text)
    (root / PROJECT).write_text(text)
    escaped = {k: re.escape(v) for k, v in old.items()}
    for place in PLACES:
        pattern = place.pattern.format(**escaped)
        replacement = place.replacement.format(**new)
        for path in sorted(root.glob(place.glob)):
            before = path.read_text()
            after = re.sub(pattern, literal(replacement), before)
            if after != before:
                path.write_text(after)


def set_source(root: Path, kind: str, path: str, column_map: dict[str, str]) -> None:
    """Set `source.kind`, `source.path` and `source.column_map` in `configs/pipeline.yaml`.

    The file's own lines are edited when they are laid out one key a line (every comment
    kept, the smallest diff for `copier update`); any other layout (flow style, a value
    split over lines) goes through a YAML library: ruamel.yaml when installed (comments
    kept), else PyYAML (which Copier brings).
    """
    file = root / PIPELINE
    text = file.read_text()
    values: dict[str, object] = {"kind": kind, "path": path, "column_map": column_map}
    edited = _set_source_lines(text, values)
    file.write_text(edited if edited is not None else _set_source_yaml(text, values))


def _set_source_lines(text: str, values: dict[str, object]) -> str | None:
    """The block `source:` with each key on one line of its own, edited in place; else None."""
    block = re.search(r"(?m)^source:[ \t]*(?:#.*)?\n(?:(?:[ \t]+.*|[ \t]*)\n)*", text)
    if not block:
        return None
    section = block.group(0)
    for key, value in values.items():
        pattern = rf"(?m)^(  {key}:[ \t]*)([^#\n]*?)([ \t]+#.*)?$"
        matches = re.findall(pattern, section)
        if len(matches) != 1 or not matches[0][1].strip():  # missing, repeated or a nested block
            return None
        text_value = value if key == "kind" else json.dumps(value)  # kind: a plain word
        section = re.sub(pattern, keep_comment(str(text_value)), section)
    return text[: block.start()] + section + text[block.end() :]


def _set_source_yaml(text: str, values: dict[str, object]) -> str:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        return _set_source_pyyaml(text, values)
    import io

    rt = YAML()
    rt.preserve_quotes = True
    data = rt.load(text)
    if not isinstance(data, dict) or not isinstance(data.get("source"), dict):
        raise InitError(f"{PIPELINE}: no 'source:' section")
    data["source"].update(values)
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


def _set_source_pyyaml(text: str, values: dict[str, object]) -> str:
    try:
        import yaml
    except ImportError:
        raise InitError(
            f"{PIPELINE}: its 'source:' section is not one key a line, and neither ruamel.yaml "
            "nor PyYAML is installed to edit it: run `make install` first"
        ) from None
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("source"), dict):
        raise InitError(f"{PIPELINE}: no 'source:' section")
    data["source"].update(values)
    print(f"{PIPELINE}: rewritten by PyYAML (its comments are gone)", file=sys.stderr)
    return str(yaml.safe_dump(data, sort_keys=False))


def remove_containers(root: Path) -> list[str]:
    """Delete the container files (`CONTAINER_PATTERNS`); return what was removed."""
    removed = []
    for pattern in CONTAINER_PATTERNS:
        for path in sorted(root.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(path.relative_to(root).as_posix())
    return removed


def identity_from(args: argparse.Namespace) -> dict[str, str]:
    """The new identity; fields not given are derived from the slug (as `copier.yml` does)."""
    name = args.name.strip()
    slug = args.slug or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    new = {
        "name": name,
        "slug": slug,
        "experiment_name": args.experiment_name or slug,
        "monitoring_experiment_name": args.monitoring_experiment_name or f"{slug}-monitoring",
        "registered_model_name": args.registered_model_name or f"{slug}-detector",
    }
    if not name or "\n" in name:
        raise InitError(f"NAME: must be one non-empty line, got {args.name!r}")
    if not SLUG.fullmatch(slug):
        raise InitError(
            f"SLUG: lowercase letters, digits and '-', starting with a letter; got {slug!r}"
        )
    if not MODEL_NAME.fullmatch(new["registered_model_name"]):
        raise InitError(
            f"MODEL: letters, digits, '_', '.', '-'; got {new['registered_model_name']!r}"
        )
    for field in ("experiment_name", "monitoring_experiment_name"):
        if not new[field].strip() or "\n" in new[field]:
            raise InitError(f"{field}: must be one non-empty line, got {new[field]!r}")
    return new


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The answers, as options (the Makefile and `copier.yml` pass the same ones)."""
    parser = argparse.ArgumentParser(prog="python3 template/apply.py", description=__doc__)
    parser.add_argument("--name", required=True, help="project name, e.g. 'Acme Risk'")
    parser.add_argument("--slug", help="lowercase-with-dashes (default: from the name)")
    parser.add_argument("--experiment-name", help="MLflow experiment (default: the slug)")
    parser.add_argument("--monitoring-experiment-name", help="default: SLUG-monitoring")
    parser.add_argument("--registered-model-name", help="default: SLUG-detector")
    parser.add_argument("--source", choices=["simulator", "file"], help="default: unchanged")
    parser.add_argument("--source-path", help="your parquet or CSV file (with --source file)")
    parser.add_argument("--column-map", default="{}", help="JSON: your column -> contract")
    parser.add_argument("--containers", choices=["yes", "no"], default="yes")
    parser.add_argument("--root", type=Path, default=Path())
    return parser.parse_args(argv)


def source_from(args: argparse.Namespace) -> tuple[str, str, dict[str, str]] | None:
    """The data source answers (kind, path, column map), or None to leave `source:` alone."""
    if args.source is None:
        return None
    try:
        column_map = json.loads(args.column_map or "{}")
    except json.JSONDecodeError as exc:
        raise InitError(f"COLUMN_MAP: not valid JSON ({exc})") from None
    if not isinstance(column_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in column_map.items()
    ):
        raise InitError("COLUMN_MAP: expected a JSON object of column name -> contract name")
    if args.source == "simulator":
        return "simulator", "pipelines/generate.py", {}  # the simulator: its code
    if not args.source_path:
        raise InitError("SOURCE_PATH: required when the data source is 'file'")
    return "file", args.source_path, column_map


def apply(args: argparse.Namespace) -> list[str]:
    """Apply every answer to the project at `args.root`; return a line per change made.
    Every answer is checked before any file is written."""
    new = identity_from(args)
    source = source_from(args)
    root = args.root
    write_identity(root, new)
    done = [f"identity: {json.dumps(new)}"]
    if source is not None:
        set_source(root, *source)
        done.append(f"source: {source[0]} {source[1] or ''}".rstrip())
    if args.containers == "no":
        done += [f"removed {p}" for p in remove_containers(root)]
    return done


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make init` and of the Copier task."""
    args = parse_args(argv)
    try:
        for line in apply(args):
            print(line)
    except (InitError, OSError) as exc:
        print(f"init: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
