"""`python -m benchmarks [--only NAMES] [--quick]`: measure, then write docs/benchmarks.md.

`--only simulator,features` runs those sections and keeps the others already in the report.
`--quick` runs at a tenth of the default size without the 10x run, and prints the report to
stdout instead of writing the file: a smoke test of the harness, not reference figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.context import Context
from benchmarks.measure import REPO_ROOT
from benchmarks.report import SectionResult, block, document, existing_blocks, merge
from benchmarks.sections import SECTIONS, Section
from pipelines.io import atomic_path

REPORT = REPO_ROOT / "docs" / "benchmarks.md"
COMMAND = "make bench"
QUICK_NOTE = "Quick mode (`--quick`): 0.1x data, no 10x run; not reference figures."


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = ",".join(s.name for s in SECTIONS)
    parser.add_argument("--only", default=names, help=f"comma-separated sections ({names})")
    parser.add_argument(
        "--quick", action="store_true", help="0.1x data, no 10x run, report to stdout only"
    )
    return parser.parse_args(argv)


def select(only: str) -> list[Section]:
    """The sections named in `only`, in report order; unknown names are an error."""
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    unknown = wanted - {s.name for s in SECTIONS}
    if unknown or not wanted:
        known = ", ".join(s.name for s in SECTIONS)
        raise SystemExit(f"--only: unknown or no sections {sorted(unknown)}; known: {known}")
    return [s for s in SECTIONS if s.name in wanted]


def run_sections(sections: Sequence[Section], quick: bool) -> dict[str, SectionResult]:
    """Run each section; scratch data lives in a temporary directory removed at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="fraudops-bench-"))
    try:
        ctx = Context(workdir, quick)
        results = {}
        for section in sections:
            print(f"[{section.name}]", file=sys.stderr)
            results[section.name] = section.run(ctx)
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def write_report(blocks: dict[str, str], quick: bool) -> None:
    """Quick: print the report. Full: merge into docs/benchmarks.md, keeping other sections."""
    if quick:
        sys.stdout.write(
            document(list(blocks.values()), "python -m benchmarks --quick", QUICK_NOTE)
        )
        return
    old = existing_blocks(REPORT.read_text()) if REPORT.exists() else {}
    merged = merge(old, blocks, [s.name for s in SECTIONS])
    with atomic_path(REPORT) as tmp:
        tmp.write_text(document(merged, COMMAND))
    print(f"wrote {REPORT}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected sections, write the report, print the targets' verdicts."""
    args = parse_args(argv)
    sections = select(args.only)
    results = run_sections(sections, args.quick)
    blocks = {s.name: block(s.name, s.title, results[s.name].body) for s in sections}
    write_report(blocks, args.quick)
    for name, result in results.items():
        for t in result.targets:
            print(f"{t.verdict}  {name}: {t.name}: {t.value} (goal {t.goal})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
