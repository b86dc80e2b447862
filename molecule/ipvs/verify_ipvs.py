# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the ipvs forwarding plane of the molecule `ipvs` scenario and write a JSON report.

    verify_ipvs.py CONFIG.json

CONFIG (written by verify.yml from the inventory):
    {"state_dir": ..., "report": ..., "project_dir": ..., "inventory": [molecule's inventory sources],
     "vip": "10.253.0.111", "port": 80,
     "protocol": "TCP", "lb_algo": "rr", "interface": "eth0", "vrrp_instance": "VI_1",
     "directors": [{"name": "lb1", "address": ..., "priority": 100}, ...],
     "real_servers": [{"name": "web1", "address": ..., "content": "Welcome to nginx NO.1"}, ...]}

The checks run in order and each one polls with a deadline (never a fixed sleep standing in for
a check): the VIP on the highest-priority director only; the IPVS table on both directors; the
real servers' VIP on lo and ARP sysctls; client traffic through the VIP reaching every real server
with the director's out-packet counter at 0 (direct routing); TCP_CHECK taking a stopped nginx out
of the table and putting it back; `lbha.cluster.drain` giving a real server weight 0 in both
directors' live tables under a polling client (no failed request, no new connection to it while
drained) and putting it back; keepalived stopped on the MASTER moving the VIP with traffic going
on, then the failback. The process exits 1 when a check failed; the report is written
either way.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import guestctl  # noqa: E402  (the scenario's own helper, next to this file)

# A client that sends one HTTP GET on a new connection every INTERVAL seconds and prints
# "<epoch> ok <body>" or "<epoch> fail <error>" per request; runs inside the namespace.
PROBER = r"""
import socket, sys, time
host, port, interval, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
req = ("GET / HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode()
while True:
    t = time.time()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "?"
        print("%.3f %s %s" % (t, "ok" if status == "200" else "fail", body.decode(errors="replace").strip() or status), flush=True)
    except OSError as exc:
        print("%.3f fail %s" % (t, type(exc).__name__), flush=True)
    time.sleep(max(0.0, interval - (time.time() - t)))
"""


class Prober(object):
    """PROBER in the client namespace; a thread collects its (epoch, ok, body) events."""

    def __init__(self, netns, host, port, interval, timeout):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-u", "-c", PROBER,
             host, str(port), str(interval), str(timeout)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lock = threading.Lock()
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.strip())

    def events(self):
        out = []
        with self.lock:
            lines = list(self.lines)
        for line in lines:
            parts = line.split(" ", 2)
            try:
                out.append((float(parts[0]), parts[1] == "ok", parts[2] if len(parts) > 2 else ""))
            except (ValueError, IndexError):
                continue
        return out

    def tail(self, n=8):
        with self.lock:
            return self.lines[-n:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(10)


def load_ipvs_parser(project_dir):
    """The collection's own ipvsadm parser (pure standard library)."""
    path = os.path.join(project_dir, "plugins", "module_utils", "ipvsadm.py")
    spec = importlib.util.spec_from_file_location("lbha_ipvs_parser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CheckFailed(Exception):
    pass


class Verifier:
    def __init__(self, config):
        self.cfg = config
        self.state = guestctl.load_state(config["state_dir"])
        self.addresses = {g["name"]: g["address"] for g in self.state["guests"]}
        self.ipvs = load_ipvs_parser(config["project_dir"])
        self.key = "%s/%s:%d" % (config["protocol"], config["vip"], config["port"])
        self.directors = sorted(config["directors"], key=lambda d: -d["priority"])
        self.master, self.backup = self.directors[0]["name"], self.directors[1]["name"]
        self.results = []
        self.failover = {}

    # ---- plumbing -------------------------------------------------------------------------
    def ssh(self, host, command, timeout=60, check=True):
        res = subprocess.run(guestctl.ssh_argv(self.state, self.addresses[host], command),
                             capture_output=True, text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise CheckFailed("%s: `%s` failed (rc=%d): %s" % (host, command, res.returncode,
                                                               (res.stderr or res.stdout).strip()))
        return res.stdout

    def netns(self, argv, timeout=60):
        return subprocess.run(["ip", "netns", "exec", self.state["netns"]] + argv,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def poll(self, what, probe, timeout, interval=0.5):
        """Call probe() until it returns a true value; returns (value, seconds)."""
        start = time.time()
        last = None
        while True:
            value, last = probe()
            if value:
                return value, round(time.time() - start, 2)
            if time.time() - start > timeout:
                raise CheckFailed("%s: not within %d s (last seen: %s)" % (what, timeout, last))
            time.sleep(interval)

    def requests(self, count):
        """count HTTP GETs through the VIP from the client; returns the list of bodies."""
        url = "http://%s:%d/" % (self.cfg["vip"], self.cfg["port"])
        script = ("for i in $(seq %d); do curl -s -m 3 -w '|%%{http_code}' %s | tr -d '\\n'; echo; done"
                  % (count, url))
        res = self.netns(["sh", "-c", script], timeout=20 + count * 4)
        out = []
        for line in res.stdout.splitlines():
            body, sep, code = line.rpartition("|")
            if not sep:
                continue
            out.append((code, body.strip()))
        return out

    def table(self, host):
        listing = self.ipvs.parse_list(self.ssh(host, "ipvsadm -L -n"))
        return listing.get(self.key)

    def stats(self, host):
        parsed = self.ipvs.parse_stats(self.ssh(host, "ipvsadm -L -n --stats --exact"))
        return parsed.get(self.key)

    def vip_holders(self):
        holders = []
        for d in self.directors:
            data = json.loads(self.ssh(d["name"], "ip -j -4 addr show dev %s" % self.cfg["interface"]))
            if any(a.get("local") == self.cfg["vip"] for link in data for a in link.get("addr_info", [])):
                holders.append(d["name"])
        return holders

    def vip_only_on(self, name):
        holders = self.vip_holders()
        return holders == [name], holders

    def _conns_grew(self, director, target):
        stats = self.stats(director)
        grown = stats is not None and stats["counters"]["conns"] >= target
        return (stats if grown else None), stats

    def run_check(self, name, func):
        start = time.time()
        entry = {"name": name}
        try:
            detail = func()
            entry.update(passed=True, detail=detail)
        except (CheckFailed, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
            entry.update(passed=False, error=str(exc))
        entry["seconds"] = round(time.time() - start, 2)
        self.results.append(entry)
        print("%s %s (%.1f s)%s" % ("PASS" if entry["passed"] else "FAIL", name, entry["seconds"],
                                    "" if entry["passed"] else ": " + entry["error"]), flush=True)
        return entry["passed"]

    # ---- checks ----------------------------------------------------------------------------
    def check_vrrp(self):
        secs = self.poll("VIP on %s only" % self.master, lambda: self.vip_only_on(self.master), 60)[1]
        return {"master": self.master, "vip_holders": [self.master], "waited_seconds": secs}

    def _table_ok(self, host, wanted):
        svc = self.table(host)
        if svc is None:
            return False, "no service %s" % self.key
        live = {rs["address"]: rs for rs in svc["real_servers"].values()}
        problems = []
        if svc["scheduler"] != self.cfg["lb_algo"]:
            problems.append("scheduler %s" % svc["scheduler"])
        if sorted(live) != sorted(wanted):
            problems.append("real servers %s" % sorted(live))
        problems += ["%s forward %s weight %s" % (a, rs["forward"], rs["weight"])
                     for a, rs in live.items() if rs["forward"] != "DR" or rs["weight"] < 1]
        return (not problems, "; ".join(problems) or svc)

    def check_table(self, host):
        wanted = [rs["address"] for rs in self.cfg["real_servers"]]
        secs = self.poll("%s: IPVS table with %s" % (host, wanted),
                         lambda: self._table_ok(host, wanted), 60)[1]
        svc = self.table(host)
        return {"host": host, "service": self.key, "scheduler": svc["scheduler"],
                "real_servers": sorted("%s %s w%d" % (k, rs["forward"], rs["weight"])
                                       for k, rs in svc["real_servers"].items()),
                "waited_seconds": secs}

    def check_real_servers(self):
        out = {}
        for rs in self.cfg["real_servers"]:
            lo = json.loads(self.ssh(rs["name"], "ip -j -4 addr show dev lo"))
            vip = [a for link in lo for a in link.get("addr_info", []) if a.get("local") == self.cfg["vip"]]
            if not vip or vip[0].get("prefixlen") != 32 or vip[0].get("label") != "lo:1":
                raise CheckFailed("%s: VIP %s/32 label lo:1 not on lo: %s" % (rs["name"], self.cfg["vip"], vip))
            # the kernel applies the higher of `all` and the interface's value: `all` decides
            sysctl = self.ssh(rs["name"], "sysctl -n net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce").split()
            if [int(x) for x in sysctl] != [1, 2]:
                raise CheckFailed("%s: net.ipv4.conf.all.arp_ignore/arp_announce are %s, want 1 2" % (rs["name"], sysctl))
            out[rs["name"]] = {"vip": "%s/32 %s" % (self.cfg["vip"], vip[0]["label"]),
                               "arp_ignore": int(sysctl[0]), "arp_announce": int(sysctl[1])}
        # nobody but the MASTER answers ARP for the VIP: the client's neighbour entry is its MAC
        self.requests(1)
        neigh = self.netns(["ip", "-j", "neigh", "show", self.cfg["vip"]]).stdout
        macs = [n.get("lladdr") for n in json.loads(neigh or "[]")]
        master_mac = guestctl.mac_for(self.addresses[self.master])
        if macs != [master_mac]:
            raise CheckFailed("client's neighbour entry for the VIP is %s, want %s (%s)"
                              % (macs, master_mac, self.master))
        out["client_vip_mac"] = macs[0]
        return out

    def check_dr_traffic(self, director, count=20):
        before = self.stats(director)
        answers = self.requests(count)
        bad = [a for a in answers if a[0] != "200"]
        if len(answers) != count or bad:
            raise CheckFailed("%d/%d requests answered 200 (failures: %s)" % (count - len(bad), count, bad[:5]))
        bodies = sorted(set(body for code, body in answers))
        wanted = sorted(rs["content"] for rs in self.cfg["real_servers"])
        if bodies != wanted:
            raise CheckFailed("answers came from %s, want every real server %s" % (bodies, wanted))
        base = before["counters"]["conns"] if before else 0
        # IPVS refreshes its counters about every 2 s on this kernel: poll
        after, secs = self.poll("%s: connection counter +%d" % (director, count),
                                lambda: self._conns_grew(director, base + count), 15)
        c = after["counters"]
        if c["in_packets"] == 0 or c["out_packets"] != 0 or c["out_bytes"] != 0:
            raise CheckFailed("%s: in_packets %d out_packets %d out_bytes %d (DR wants out = 0)"
                              % (director, c["in_packets"], c["out_packets"], c["out_bytes"]))
        per_rs = {k: v["conns"] - ((before or {}).get("real_servers", {}).get(k, {}).get("conns", 0))
                  for k, v in after["real_servers"].items()}
        if any(v <= 0 for v in per_rs.values()):
            raise CheckFailed("%s: a real server got no connections: %s" % (director, per_rs))
        # direct routing keeps the client's address: the real servers log it
        client_ip = self.state["client_address"].split("/")[0]
        for rs in self.cfg["real_servers"]:
            log = self.ssh(rs["name"], "tail -n %d /var/log/nginx/access.log" % count)
            if not any(line.startswith(client_ip + " ") for line in log.splitlines()):
                raise CheckFailed("%s: no request from the client %s in access.log" % (rs["name"], client_ip))
        return {"director": director, "requests": count, "answers": {b: sum(1 for code, x in answers if x == b) for b in bodies},
                "counters": c, "new_conns_per_real_server": per_rs, "counters_seen_after_seconds": secs}

    def check_tcp_check(self):
        victim = self.cfg["real_servers"][-1]
        others = [rs["address"] for rs in self.cfg["real_servers"][:-1]]
        everyone = [rs["address"] for rs in self.cfg["real_servers"]]
        self.ssh(victim["name"], "systemctl stop nginx")
        try:
            removed = self.poll("%s leaves the table of %s" % (victim["address"], self.master),
                                lambda: self._table_ok(self.master, others), 60)[1]
            answers = self.requests(6)
            if set(answers) != {("200", rs["content"]) for rs in self.cfg["real_servers"][:-1]}:
                raise CheckFailed("with %s down the client got %s" % (victim["name"], sorted(set(answers))))
        finally:
            self.ssh(victim["name"], "systemctl start nginx")
        readded = self.poll("%s back in the table of %s" % (victim["address"], self.master),
                            lambda: self._table_ok(self.master, everyone), 60)[1]
        readded_backup = self.poll("%s back in the table of %s" % (victim["address"], self.backup),
                                   lambda: self._table_ok(self.backup, everyone), 60)[1]
        answers = self.requests(6)
        if sorted(set(b for code, b in answers)) != sorted(rs["content"] for rs in self.cfg["real_servers"]):
            raise CheckFailed("after restarting nginx the client got %s" % sorted(set(answers)))
        return {"stopped": victim["name"], "removed_after_seconds": removed,
                "readded_after_seconds": readded, "readded_on_backup_after_seconds": readded_backup}

    def playbook(self, name, **extra):
        """Run the collection's playbook `name` against the scenario's own inventory."""
        sibling = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        argv = [sibling if os.path.exists(sibling) else "ansible-playbook"]
        for source in self.cfg["inventory"]:
            argv += ["-i", source]
        argv.append("lbha.cluster.%s" % name)
        for key, value in sorted(extra.items()):
            argv += ["-e", "%s=%s" % (key, value)]
        start = time.time()
        res = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if res.returncode != 0:
            tail = "\n".join(res.stdout.splitlines()[-25:])
            raise CheckFailed("%s failed (rc=%d): %s" % (" ".join(argv[-5:]), res.returncode, tail))
        return round(time.time() - start, 1)

    def _weights(self, address):
        """{director: weight of address in its live IPVS table (None when absent)}."""
        out = {}
        for d in self.directors:
            svc = self.table(d["name"]) or {"real_servers": {}}
            found = [rs["weight"] for rs in svc["real_servers"].values() if rs["address"] == address]
            out[d["name"]] = found[0] if found else None
        return out

    def check_drain(self):
        victim, others = self.cfg["real_servers"][0], self.cfg["real_servers"][1:]
        prober = Prober(self.state["netns"], self.cfg["vip"], self.cfg["port"], 0.2, 2.0)
        restored = False
        try:
            self.poll("the client prober's first answers",
                      lambda: (sum(1 for e in prober.events() if e[1]) >= 5, prober.tail()), 30)
            t_start = time.time()
            drain_s = self.playbook("drain", lbha_drain_hosts=victim["name"])
            weights = self._weights(victim["address"])
            if any(w != 0 for w in weights.values()):
                raise CheckFailed("after the drain %s has weights %s, want 0 everywhere" % (victim["name"], weights))
            t_drained = time.time()
            self.poll("20 answers while %s is drained" % victim["name"],
                      lambda: (len([e for e in prober.events() if e[0] >= t_drained and e[1]]) >= 20,
                               prober.tail()), 60)
            t_undrain = time.time()
            undrain_s = self.playbook("drain", lbha_drain_hosts=victim["name"], lbha_drain_state="undrained")
            restored = True
            weights_back = self._weights(victim["address"])
            if any(not w for w in weights_back.values()):
                raise CheckFailed("after the undrain %s has weights %s, want above 0" % (victim["name"], weights_back))
            t_back = time.time()
            self.poll("%s answering again" % victim["name"],
                      lambda: (any(e[0] >= t_back and e[2] == victim["content"] for e in prober.events()),
                               prober.tail()), 60)
        finally:
            prober.stop()
            if not restored:
                # leave the later checks a cluster with every real server in rotation
                try:
                    self.playbook("drain", lbha_drain_hosts=victim["name"], lbha_drain_state="undrained")
                except (CheckFailed, subprocess.TimeoutExpired) as exc:
                    print("could not undrain %s after a failed check: %s" % (victim["name"], exc), flush=True)
        events = [e for e in prober.events() if e[0] >= t_start]
        failed = [e for e in events if not e[1]]
        if failed:
            raise CheckFailed("%d of %d requests failed during drain/undrain: %s" % (len(failed), len(events), failed[:3]))
        drained = [e[2] for e in events if t_drained <= e[0] < t_undrain]
        if victim["content"] in drained or set(drained) - {rs["content"] for rs in others}:
            raise CheckFailed("while %s was drained the client got %s" % (victim["name"], sorted(set(drained))))
        return {"drained": victim["name"], "weights_drained": weights, "weights_restored": weights_back,
                "requests": len(events), "failed_requests": 0, "requests_while_drained": len(drained),
                "drain_playbook_seconds": drain_s, "undrain_playbook_seconds": undrain_s}

    def check_failover(self):
        interval = 0.1
        prober = subprocess.Popen(
            ["ip", "netns", "exec", self.state["netns"], sys.executable, "-u", "-c", PROBER,
             self.cfg["vip"], str(self.cfg["port"]), str(interval), "1.0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = []
            # a baseline: the prober's first answers through the MASTER
            deadline = time.time() + 20
            while sum(1 for x in lines if " ok " in x) < 5:
                if time.time() > deadline:
                    raise CheckFailed("the client prober got no baseline answers: %s" % lines[-5:])
                lines.append(prober.stdout.readline().strip())
            pid = self.ssh(self.master, "systemctl show -p MainPID --value keepalived").strip()
            t_kill = time.time()
            self.ssh(self.master, "kill -TERM %s" % pid)
            moved = self.poll("VIP moves to %s" % self.backup,
                              lambda: self.vip_only_on(self.backup), 30, interval=0.2)[1]
            # keep probing until 30 answers in a row come back after the move
            deadline = time.time() + 30
            streak = 0
            while streak < 30:
                if time.time() > deadline:
                    raise CheckFailed("traffic did not come back steadily after the failover: %s" % lines[-10:])
                line = prober.stdout.readline().strip()
                lines.append(line)
                streak = streak + 1 if " ok " in line else 0
        finally:
            prober.kill()
            prober.wait()
        events = []
        for line in lines:
            parts = line.split(" ", 2)
            if len(parts) >= 2:
                try:
                    events.append((float(parts[0]), parts[1] == "ok"))
                except ValueError:
                    continue
        ok_times = [t for t, ok in events if ok]
        before = [t for t in ok_times if t <= t_kill]
        after = [t for t in ok_times if t > t_kill]
        last_before = max(before) if before else t_kill
        # the longest time without a successful answer, from the last one before the stop
        outage = max([b - a for a, b in zip([last_before] + after, after)] or [0.0])
        failed = sum(1 for t, ok in events if not ok and t > t_kill)
        self.failover = {
            "trigger": "SIGTERM to keepalived on %s (keepalived sends a priority-0 advert)" % self.master,
            "vip_moved_within_seconds": moved,
            "client_outage_seconds": round(outage, 3),
            "client_requests_after_kill": len([e for e in events if e[0] > t_kill]),
            "client_failed_requests": failed,
            "probe_interval_seconds": interval,
        }
        # the new MASTER forwards by direct routing too
        traffic = self.check_dr_traffic(self.backup, count=10)
        return dict(self.failover, backup_traffic=traffic)

    def check_failback(self):
        self.ssh(self.master, "systemctl start keepalived")
        secs = self.poll("VIP back on %s only" % self.master, lambda: self.vip_only_on(self.master), 60)[1]
        self.failover["failback_seconds"] = secs
        answers = self.requests(4)
        if any(code != "200" for code, body in answers):
            raise CheckFailed("after the failback the client got %s" % answers)
        return {"vip_back_on": self.master, "after_seconds": secs}

    def run(self):
        t0 = time.time()
        ok = self.run_check("vrrp_single_master", self.check_vrrp)
        ok &= self.run_check("ipvs_table_master", lambda: self.check_table(self.master))
        ok &= self.run_check("ipvs_table_backup", lambda: self.check_table(self.backup))
        ok &= self.run_check("real_servers_vip_and_arp", self.check_real_servers)
        ok &= self.run_check("dr_traffic_through_vip", lambda: self.check_dr_traffic(self.master))
        ok &= self.run_check("tcp_check_remove_and_readd", self.check_tcp_check)
        ok &= self.run_check("drain_and_undrain_without_a_failed_request", self.check_drain)
        ok &= self.run_check("failover_on_keepalived_stop", self.check_failover)
        ok &= self.run_check("failback", self.check_failback)
        kernel = self.ssh(self.master, "uname -r", check=False).strip()
        manifest = {}
        try:
            with open(os.path.join(self.state["image_dir"], "manifest.json")) as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            pass
        report = {
            "scenario": "ipvs",
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "passed": bool(ok),
            "dataplane": "ipvs",
            "guest_kernel": kernel,
            "guest_image": {k: manifest.get(k) for k in ("recipe", "kernel_package", "kernel_version", "build_seconds")},
            "accelerator": "tcg",
            "guests_ssh_ready_seconds": self.state.get("ssh_ready_seconds"),
            "failover": self.failover,
            "checks": self.results,
            "verify_seconds": round(time.time() - t0, 1),
        }
        path = self.cfg["report"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(path + ".tmp", path)
        print("report: %s" % path)
        return 0 if ok else 1


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        config = json.load(f)
    return Verifier(config).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
