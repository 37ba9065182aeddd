#!/usr/bin/env python3
"""Markdown tables from codec_bench's JSON output (--benchmark_out=FILE
--benchmark_out_format=json), one table per payload size, with each row's
speed relative to the memcpy of the same bytes.

    build/default/bench/codec_bench --benchmark_out=micro.json --benchmark_out_format=json
    bench/micro/table.py micro.json > micro.md

Columns:
  ns/frame      CPU time per iteration / frames per iteration (CPU time, not
                wall time: steadier on a shared machine)
  GB/s          bytes processed per CPU second (encode_header: header bytes)
  vs memcpy     memcpy's time for the same frames / this row's time:
                above 1 is faster than copying the bytes once, below 1 slower
  allocs/frame  heap allocations (operator new) per frame
With --repetitions, the median aggregate rows are used.
"""
import json
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    rows = {}
    order = []
    has_median = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
    for b in data["benchmarks"]:
        if has_median and b.get("aggregate_name") != "median":
            continue
        if not has_median and b.get("run_type") == "aggregate":
            continue
        name = b.get("run_name", b["name"])
        if b.get("error_occurred"):
            rows[name] = None
        else:
            rows[name] = b
        if name not in order:
            order.append(name)

    ctx = data.get("context", {})
    print(f"<!-- codec_bench {ctx.get('date', '')}, {ctx.get('num_cpus', '?')} CPUs at "
          f"{ctx.get('mhz_per_cpu', '?')} MHz, load average "
          f"{', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))} -->")
    sizes = []
    for name in order:
        size = name.split("/", 1)[0]
        if size not in sizes:
            sizes.append(size)
    for size in sizes:
        memcpy = rows.get(f"{size}/memcpy")
        print(f"\n**Payload {size}**\n")
        print("| operation | ns/frame | GB/s | vs memcpy | allocs/frame |")
        print("|---|---:|---:|---:|---:|")
        for name in order:
            if not name.startswith(size + "/"):
                continue
            op = name.split("/", 1)[1]
            b = rows[name]
            if b is None:
                print(f"| {op} | error | | | |")
                continue
            scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
            cpu_ns = b["cpu_time"] * scale
            items = b.get("items_per_second", 0)
            frames_per_iter = items * cpu_ns / 1e9 if items else 0
            ns_frame = cpu_ns / frames_per_iter if frames_per_iter else float("nan")
            gbs = b.get("bytes_per_second", 0) / 1e9
            ratio = ""
            if memcpy is not None:
                mscale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[memcpy.get("time_unit", "ns")]
                ratio = f"{memcpy['cpu_time'] * mscale / cpu_ns:.3g}"
            allocs = b.get("allocs/frame", 0)
            print(f"| {op} | {ns_frame:.3g} | {gbs:.3g} | {ratio} | {allocs:.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
