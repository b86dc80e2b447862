# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale of the cluster model: validate + render one virtual server with N real servers.

For N in 10, 100, 1,000 and 10,000: time ``model.normalize`` (parse + validate + normalise)
and ``keepalived.render`` separately, several runs each, and report the median. When
keepalived is installed, the 1,000-server file is also checked with ``keepalived -t``.
Writes ``benchmarks/results/render_scale.json``. Target: under 1 s for 1,000 real servers.

    python3 benchmarks/render_scale.py [--runs 7] [--output PATH]
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "plugins"))
from module_utils import keepalived, model  # noqa: E402  (the package's relative imports work this way)

SIZES = (10, 100, 1000, 10000)
TARGET_1000_S = 1.0


def cluster(n):
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    servers = [{"name": "web%d" % i, "address": str(ipaddress.IPv4Address(base + 10 + i))} for i in range(n)]
    # every tenth server overrides the check, as the seed's second server does
    for s in servers[::10]:
        s["check"] = {"connect_timeout": 3, "delay_before_retry": 3}
    definition = {
        "global_defs": {"notification_email": ["ops@example.com"], "smtp_server": "192.0.2.25"},
        "vrrp_instances": [{"name": "VI_1", "interface": "eth0", "virtual_router_id": 51,
                            "authentication": {"auth_type": "PASS", "auth_pass": "1111"},
                            "virtual_ipaddress": ["10.0.0.1/16"]}],
        "virtual_servers": [{"address": "10.0.0.1", "port": 80, "lb_algo": "wrr", "delay_loop": 6,
                             "real_servers_group": "web",
                             "check": {"type": "TCP_CHECK", "connect_timeout": 1, "retry": 3}}],
    }
    directors = [{"name": "lb1", "address": "10.0.0.2", "priority": 100},
                 {"name": "lb2", "address": "10.0.0.3", "priority": 90}]
    return definition, directors, {"web": servers}


def measure(n, runs):
    definition, directors, rs_hosts = cluster(n)
    t_norm, t_render, text = [], [], None
    for _attempt in range(runs):
        t0 = time.perf_counter()
        m = model.normalize(definition, directors[0], directors, rs_hosts)
        t1 = time.perf_counter()
        text = keepalived.render(m)
        t2 = time.perf_counter()
        t_norm.append(t1 - t0)
        t_render.append(t2 - t1)
    assert len(m["virtual_servers"][0]["real_servers"]) == n
    total = [a + b for a, b in zip(t_norm, t_render)]
    return {
        "real_servers": n, "runs": runs,
        "validate_median_s": round(statistics.median(t_norm), 6),
        "render_median_s": round(statistics.median(t_render), 6),
        "total_median_s": round(statistics.median(total), 6),
        "total_max_s": round(max(total), 6),
        "config_bytes": len(text.encode()),
        "config_lines": text.count("\n"),
    }, text


def keepalived_test(text):
    binary = shutil.which("keepalived") or ("/usr/sbin/keepalived" if os.access("/usr/sbin/keepalived", os.X_OK)
                                            else None)
    if binary is None:
        return {"ran": False, "reason": "keepalived is not installed"}
    if not os.path.exists("/sys/class/net/eth0"):
        return {"ran": False, "reason": "no eth0 interface on this machine"}
    # script_user must exist on the machine: 'nobody' stands in for keepalived_script
    text = text.replace("script_user keepalived_script", "script_user nobody")
    fd, path = tempfile.mkstemp(suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        t0 = time.perf_counter()
        ok, messages, notes = keepalived.config_test(path, run_argv, binary)
        elapsed = time.perf_counter() - t0
    finally:
        os.unlink(path)
    return {"ran": True, "ok": ok, "seconds": round(elapsed, 3), "messages": messages[:2000], "notes": notes}


def run_argv(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "render_scale.json"))
    opts = ap.parse_args()
    results = []
    kt = None
    for n in SIZES:
        runs = opts.runs if n <= 1000 else max(3, opts.runs // 2)
        r, text = measure(n, runs)
        results.append(r)
        print("%6d real servers: validate %.4fs render %.4fs total %.4fs (median of %d)"
              % (n, r["validate_median_s"], r["render_median_s"], r["total_median_s"], runs))
        if n == 1000:
            kt = keepalived_test(text)
            print("keepalived -t on 1,000 real servers: %s" % json.dumps(kt))
    one_k = [r for r in results if r["real_servers"] == 1000][0]
    doc = {
        "benchmark": "render_scale",
        "description": "model.normalize + keepalived.render of one virtual server with N real servers",
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "results": results,
        "keepalived_test_1000": kt,
        "target": {"real_servers": 1000, "max_total_s": TARGET_1000_S,
                   "met": one_k["total_median_s"] < TARGET_1000_S},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(os.path.dirname(opts.output), exist_ok=True)
    with open(opts.output, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    print("wrote %s" % opts.output)
    return 0 if doc["target"]["met"] and (not kt or not kt.get("ran") or kt["ok"]) else 1


if __name__ == "__main__":
    sys.exit(main())
