#!/usr/bin/env python3
"""Puts a bench/run.py result into docs/BENCHMARKS.md.

    docs/bench/paste_results.py build/bench/results/<time>

Replaces everything between the markers

    <!-- BEGIN run.py tables -->
    <!-- END run.py tables -->

with that run's tables.md (which starts with the machine, date, git revision,
load average and exact command), and copies its chart.png to
docs/bench/chart.png, which the document embeds. Nothing else is touched.
Python 3 standard library only.
"""
import pathlib
import shutil
import sys

BEGIN = "<!-- BEGIN run.py tables -->"
END = "<!-- END run.py tables -->"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run = pathlib.Path(sys.argv[1])
    tables = run / "tables.md"
    if not tables.is_file():
        print(f"{tables}: not found (is {run} a bench/run.py --out directory?)", file=sys.stderr)
        return 1
    docs = pathlib.Path(__file__).resolve().parent.parent
    doc = docs / "BENCHMARKS.md"
    text = doc.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        print(f"{doc}: markers {BEGIN!r} / {END!r} not found", file=sys.stderr)
        return 1
    body = tables.read_text(encoding="utf-8").strip()
    # run.py's own headings are level 3; keep them under this section.
    text = text[: start + len(BEGIN)] + "\n" + body + "\n" + text[end:]
    doc.write_text(text, encoding="utf-8")
    chart = run / "chart.png"
    if chart.is_file():
        shutil.copyfile(chart, docs / "bench" / "chart.png")
        print(f"copied {chart} to {docs / 'bench' / 'chart.png'}")
    else:
        print(f"warning: {chart} not found; docs/bench/chart.png left as it was", file=sys.stderr)
    print(f"pasted {tables} into {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
