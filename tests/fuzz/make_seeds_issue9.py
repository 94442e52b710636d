#!/usr/bin/env python3
"""Writes the seed corpora of the issue-9 parser targets from the fixtures
(tests/fixtures) and hand-written real formats:
  corpus/cgroup_files/      one byte picking the parser, then a file's text
  corpus/cgroup_tree/       fuzz_tree.hpp patches over the cgroup fixtures
  corpus/resctrl_schemata/  schemata files
  corpus/resctrl_tree/      fuzz_tree.hpp patches over the resctrl fixtures
  corpus/spec_json/         desired-spec files
Run from anywhere: python3 tests/fuzz/make_seeds_issue9.py
"""
import json, os, pathlib

here = pathlib.Path(__file__).resolve().parent
fx = here.parent / "fixtures"
out = here / "corpus"

# parser index in fuzz_cgroup_files.cpp
PICK = {
    "cpu.max": 0, "memory.max": 1, "memory.high": 1, "memory.low": 1, "memory.min": 1, "memory.swap.max": 1,
    "memory.limit_in_bytes": 2, "memory.soft_limit_in_bytes": 2, "memory.memsw.limit_in_bytes": 2,
    "cpu.weight": 3, "cpuacct.usage": 3, "cpuacct.usage_user": 3, "cpuacct.usage_sys": 3, "cpu.shares": 3,
    "cpu.cfs_period_us": 3, "memory.current": 3, "memory.usage_in_bytes": 3, "blkio.weight": 3,
    "cpu.stat": 4, "memory.events": 4, "memory.oom_control": 4, "memory.stat": 4,
    "io.max": 6, "io.stat": 6, "io.weight": 7,
    "blkio.throttle.read_bps_device": 8, "blkio.throttle.write_bps_device": 8,
    "blkio.throttle.read_iops_device": 8, "blkio.throttle.write_iops_device": 8, "blkio.weight_device": 8,
    "blkio.throttle.io_service_bytes": 9, "blkio.throttle.io_serviced": 9,
}


def put(d, name, data):
    p = out / d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())


seen = set()
for tree in ("cgroup-v2", "cgroup-v1", "cgroup-hybrid", "cgroup-v2-links"):
    for f in sorted((fx / tree).rglob("*")):
        if f.is_file() and not f.is_symlink() and f.name in PICK:
            data = bytes([PICK[f.name]]) + f.read_bytes()
            if data in seen:
                continue
            seen.add(data)
            put("cgroup_files", f"{tree}-{f.parent.name}-{f.name}", data)
# real formats and edge cases by hand
for name, pick, text in [
    ("cpu.max-max", 0, "max 100000\n"), ("cpu.max-zero-period", 0, "50000 0\n"),
    ("cpu.max-negative", 0, "-1 100000\n"), ("cpu.max-overflow", 0, "18446744073709551615 100000\n"),
    ("memory.max-max", 1, "max\n"), ("memory.max-2^64-1", 1, "18446744073709551615\n"),
    ("memory.max-2^64", 1, "18446744073709551616\n"),
    ("limit_in_bytes-unlimited", 2, "9223372036854771712\n"), ("device-ok", 5, "8:16"), ("device-bad", 5, "8:"),
    ("io.weight", 7, "default 100\n8:16 200\n"),
    ("memory.events", 4, "low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"),
    ("io.max-max", 6, "8:16 rbps=max wbps=max riops=max wiops=max\n"),
    ("blkio-stat", 9, "8:16 Read 4096\n8:16 Write 8192\n8:16 Sync 0\n8:16 Async 12288\n8:16 Total 12288\nTotal 12288\n"),
]:
    put("cgroup_files", f"hand-{name}", bytes([pick]) + text.encode())

# cgroup trees: the plain fixtures and a few patches
for name, patch in [
    ("v2-plain", "tree v2\n"), ("v1-plain", "tree v1\n"), ("hybrid-plain", "tree hybrid\n"),
    ("links-plain", "tree links\n"),
    ("v2-cpu.max-garbage", "tree v2\n=== sys/fs/cgroup/bulkhead/web/cpu.max\nmax max\n"),
    ("v2-memory.max-huge", "tree v2\n=== sys/fs/cgroup/bulkhead/web/memory.max\n18446744073709551615\n"),
    ("v2-io.stat-broken", "tree v2\n=== sys/fs/cgroup/bulkhead/web/io.stat\n8:16 rbytes\n"),
    ("v2-link-out", "tree v2\n=== rm sys/fs/cgroup/bulkhead/web/cpu.stat\n=== link sys/fs/cgroup/bulkhead/web/cpu.stat /etc/passwd\n"),
    ("v2-vanished", "tree v2\n=== rm sys/fs/cgroup/bulkhead/web/memory.current\n"),
    ("v1-cfs-negative", "tree v1\n=== sys/fs/cgroup/cpu,cpuacct/bulkhead/web/cpu.cfs_period_us\n0\n"),
    ("v2-mountinfo-empty", "tree v2\n=== mountinfo\n\n"),
]:
    put("cgroup_tree", name, patch)

# schemata
for tree in ("resctrl", "resctrl-cdp", "resctrl-mbps"):
    for f in sorted((fx / tree).rglob("schemata")):
        put("resctrl_schemata", f"{tree}-{f.parent.name}", f.read_bytes())
for name, text in [
    ("padded", "    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n"), ("cdp", "L3CODE:0=0f0\nL3DATA:0=00f\n"),
    ("twice", "L3:0=1;0=2\n"), ("mask-huge", "L3:0=ffffffffffffffffff\n"), ("l2", "L2:0=ff;1=ff;2=ff\n"),
]:
    put("resctrl_schemata", f"hand-{name}", text)

# resctrl trees
for name, patch in [
    ("plain", "tree plain\n"), ("cdp", "tree cdp\n"), ("mbps", "tree mbps\n"),
    ("cbm-zero", "tree plain\n=== info/L3/cbm_mask\n0\n"),
    ("min-bits-wide", "tree plain\n=== info/L3/min_cbm_bits\n99\n"),
    ("closids-garbage", "tree plain\n=== info/L3/num_closids\nmany\n"),
    ("mb-gran", "tree plain\n=== info/MB/bandwidth_gran\n0\n"),
    ("schemata-broken", "tree plain\n=== web/schemata\nL3:0=zz\n"),
    ("link-out", "tree plain\n=== rm web/schemata\n=== link web/schemata ../../../../outside\n"),
    ("info-gone", "tree plain\n=== rm info/L3/cbm_mask\n"),
]:
    put("resctrl_tree", name, patch)

# desired specs: docs examples and hand-written
docs = (here.parent.parent / "docs" / "desired-spec.md").read_text()
n = 0
for block in docs.split("```json")[1:]:
    text = block.split("```")[0]
    n += 1
    put("spec_json", f"docs-{n}", text)
for name, text in [
    ("minimal", '{"version": 1, "instances": {}}'),
    ("cpu", '{"version": 1, "instances": {"web-1": {"cpu": {"quota_us": 50000, "period_us": 100000, "shares": 1024, "cpus": "0-3"}}}}'),
    ("unlimited", '{"version": 1, "instances": {"web-1": {"memory": {"hard_limit_bytes": "unlimited"}}}}'),
    ("uuid", '{"version": 1, "instances": {"5B8E0E3C-8E4B-4C1B-9F38-2E5C1A7D0A11": {"blkio_weight": 500}}}'),
    ("dup", '{"version": 1, "version": 1, "instances": {}}'),
    ("overflow", '{"version": 1, "instances": {"x": {"memory": {"hard_limit_bytes": 18446744073709551615}}}}'),
    ("negative", '{"version": 1, "instances": {"x": {"cpu": {"period_us": -1}}}}'),
    ("zero-period", '{"version": 1, "instances": {"x": {"cpu": {"period_us": 0}}}}'),
    ("float", '{"version": 1, "instances": {"x": {"cpu": {"quota_us": 1.5}}}}'),
]:
    put("spec_json", f"hand-{name}", text)
