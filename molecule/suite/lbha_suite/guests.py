# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start and stop the QEMU guests of the molecule `ipvs` scenario.

The guests sit on a bridge inside an isolated network namespace (no default route, no link to
the host's networks); the namespace's own address on the bridge is the test client. Ansible and
the verifier reach the guests over SSH through `ip netns exec NETNS nc HOST PORT`.

    guestctl.py up SPEC.json      boot every guest of SPEC, wait for SSH, write STATE_DIR/guests.json
    guestctl.py down STATE_DIR    kill the guests (by the PIDs recorded in STATE_DIR), delete the netns
    guestctl.py ssh STATE_DIR HOST [COMMAND...]   run a command on a guest (debugging aid)

SPEC (JSON): {"state_dir": ..., "image_dir": ..., "netns": ..., "bridge": ..., "client_address":
"10.253.0.10/24", "prefix": 24, "ssh_key": ..., "boot_timeout": 300,
"guests": [{"name": "lb1", "address": "10.253.0.1", "memory": 256}, ...]}
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import json
import os
import signal
import subprocess
import sys
import time

QEMU = "qemu-system-x86_64"
STATE_FILE = "guests.json"


def log(msg):
    print("guestctl: " + msg, file=sys.stderr, flush=True)


def run(argv, check=True, **kwargs):
    res = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if check and res.returncode != 0:
        raise RuntimeError("%s failed (rc=%d): %s" % (" ".join(argv), res.returncode,
                                                      (res.stderr or res.stdout).strip()))
    return res


def netns_exists(netns):
    return netns in run(["ip", "netns", "list"]).stdout.split()


def ssh_argv(state, host_address, command=None, timeout=10):
    """The ssh command line that reaches a guest through the namespace."""
    proxy = "ip netns exec %s nc %%h %%p" % state["netns"]
    argv = ["ssh", "-i", state["ssh_key"], "-l", "root",
            "-o", "ProxyCommand=" + proxy,
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=%d" % timeout, host_address]
    if command:
        argv.append(command)
    return argv


def mac_for(address):
    octets = [int(x) for x in address.split(".")]
    return "52:54:00:%02x:%02x:%02x" % (octets[1], octets[2], octets[3])


def qemu_pid_alive(pid, marker):
    """True when pid is a running qemu started for this state directory."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and os.path.basename(cmdline[0]).decode(errors="replace") == QEMU \
        and any(marker.encode() in arg for arg in cmdline)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def console_tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            data = f.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no console log)"
    return "\n".join(data[-lines:])


def net_up(spec, state):
    netns, bridge = spec["netns"], spec["bridge"]
    if netns_exists(netns):
        raise RuntimeError("network namespace %s already exists: another run is active or a "
                           "previous one was not destroyed (molecule destroy -s ipvs)" % netns)
    run(["ip", "netns", "add", netns])
    state["netns"] = netns          # ours from now on: `down` deletes it
    save_state(state)
    ns = ["ip", "-n", netns]
    run(ns + ["link", "set", "lo", "up"])
    # multicast snooping off: VRRP adverts (224.0.0.18) reach every port without IGMP joins
    run(ns + ["link", "add", bridge, "type", "bridge", "mcast_snooping", "0"])
    run(ns + ["addr", "add", spec["client_address"], "dev", bridge])
    run(ns + ["link", "set", bridge, "up"])
    for index, _guest in enumerate(spec["guests"], start=1):
        tap = "%s-t%d" % (spec["tap_prefix"], index)
        run(["ip", "netns", "exec", netns, "ip", "tuntap", "add", tap, "mode", "tap"])
        run(ns + ["link", "set", tap, "master", bridge, "up"])
    # the namespace has no default route and no link out: nothing leaves it
    routes = run(ns + ["-4", "route", "show", "default"]).stdout.strip()
    if routes:
        raise RuntimeError("unexpected default route in %s: %s" % (netns, routes))


def start_guest(spec, state_dir, index, guest, pubkey_b64):
    name = guest["name"]
    image = spec["image_dir"]
    disk = os.path.join(state_dir, name + ".qcow2")
    pidfile = os.path.join(state_dir, name + ".pid")
    console = os.path.join(state_dir, name + ".console.log")
    for path in (disk, pidfile, console):
        if os.path.exists(path):
            os.unlink(path)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.join(image, "base.qcow2"),
         "-F", "qcow2", disk])
    tap = "%s-t%d" % (spec["tap_prefix"], index)
    cmdline = " ".join([
        "console=ttyS0", "panic=-1", "quiet", "net.ifnames=0",
        "systemd.hostname=" + name,
        "lbha.ip=%s/%d" % (guest["address"], spec["prefix"]),
        "lbha.key=" + pubkey_b64,
    ])
    argv = [
        "ip", "netns", "exec", spec["netns"],
        QEMU, "-name", "lbhaq-" + name,
        "-accel", "tcg,thread=multi,tb-size=%d" % spec.get("tb_size", 64),
        "-cpu", "max", "-m", str(guest.get("memory", 256)), "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
        "-serial", "file:" + console, "-no-reboot",
        "-kernel", os.path.join(image, "vmlinux"), "-initrd", os.path.join(image, "initrd.gz"),
        "-append", cmdline,
        "-drive", "file=%s,if=virtio,cache=unsafe" % disk,
        "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
        "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % mac_for(guest["address"]),
        "-device", "virtio-rng-pci",
        "-daemonize", "-pidfile", pidfile,
    ]
    run(argv)
    pid = read_pid(pidfile)
    if pid is None:
        raise RuntimeError("%s: qemu started but wrote no pid file %s" % (name, pidfile))
    return {"name": name, "address": guest["address"], "pid": pid, "tap": tap,
            "mac": mac_for(guest["address"]), "disk": disk, "console": console,
            "pidfile": pidfile}


def wait_ssh(state, guests, timeout):
    """Wait until every guest answers SSH; returns {name: seconds since start}."""
    pending = {g["name"]: g for g in guests}
    ready = {}
    deadline = state["started"] + timeout
    while pending:
        for name, guest in list(pending.items()):
            if not qemu_pid_alive(guest["pid"], state["state_dir"]):
                raise RuntimeError("%s: qemu (pid %d) exited during boot; console:\n%s"
                                   % (name, guest["pid"], console_tail(guest["console"])))
            res = subprocess.run(ssh_argv(state, guest["address"], "true", timeout=5),
                                 capture_output=True, text=True, timeout=30, check=False)
            if res.returncode == 0:
                ready[name] = round(time.time() - state["started"], 2)
                log("%s (%s) answers SSH after %.1f s" % (name, guest["address"], ready[name]))
                del pending[name]
        if pending and time.time() > deadline:
            tails = "\n".join("--- %s\n%s" % (n, console_tail(g["console"]))
                              for n, g in pending.items())
            raise RuntimeError("no SSH from %s within %d s; consoles:\n%s"
                               % (", ".join(sorted(pending)), timeout, tails))
        if pending:
            time.sleep(1)
    return ready


def save_state(state):
    path = os.path.join(state["state_dir"], STATE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, path)


def load_state(state_dir):
    with open(os.path.join(state_dir, STATE_FILE)) as f:
        return json.load(f)


def cmd_up(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    spec.setdefault("tap_prefix", "lbhaq")
    state_dir = spec["state_dir"]
    os.makedirs(state_dir, exist_ok=True)
    with open(spec["ssh_key"] + ".pub") as f:
        pubkey_b64 = base64.b64encode(f.read().strip().encode()).decode()
    # "netns" is recorded once this run has created it, so a failure never deletes a
    # namespace that belongs to another run
    state = {"state_dir": state_dir, "netns": None, "bridge": spec["bridge"],
             "ssh_key": spec["ssh_key"], "client_address": spec["client_address"],
             "image_dir": spec["image_dir"], "guests": [], "started": time.time()}
    save_state(state)        # from here on, `down` can clean up whatever comes next
    try:
        net_up(spec, state)
        for index, guest in enumerate(spec["guests"], start=1):
            state["guests"].append(start_guest(spec, state_dir, index, guest, pubkey_b64))
            save_state(state)
        log("started %s" % ", ".join("%s (pid %d)" % (g["name"], g["pid"])
                                     for g in state["guests"]))
        state["ssh_ready_seconds"] = wait_ssh(state, state["guests"],
                                              spec.get("boot_timeout", 300))
        state["boot_seconds"] = max(state["ssh_ready_seconds"].values())
        save_state(state)
    except Exception:
        cmd_down(state_dir)
        raise
    json.dump(state, sys.stdout, indent=2)
    print()
    return 0


def cmd_down(state_dir):
    """Kill the qemu processes this state directory started and delete the namespace.

    Works from the pid files too, so a run that failed before writing its state is cleaned up.
    """
    netns = None
    pids = set()
    try:
        state = load_state(state_dir)
        netns = state.get("netns")
        pids.update(g["pid"] for g in state.get("guests", []))
    except (OSError, ValueError):
        state = None
    if os.path.isdir(state_dir):
        for entry in os.listdir(state_dir):
            if entry.endswith(".pid"):
                pid = read_pid(os.path.join(state_dir, entry))
                if pid:
                    pids.add(pid)
    for pid in sorted(pids):
        if qemu_pid_alive(pid, state_dir):
            log("killing qemu pid %d" % pid)
            os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while any(qemu_pid_alive(p, state_dir) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if qemu_pid_alive(p, state_dir)]
    if left:
        raise RuntimeError("qemu pids %s did not exit" % left)
    if netns and netns_exists(netns):
        log("deleting network namespace %s" % netns)
        run(["ip", "netns", "del", netns])
    if os.path.isdir(state_dir):
        for entry in os.listdir(state_dir):
            if entry.endswith((".qcow2", ".pid")):
                os.unlink(os.path.join(state_dir, entry))
    if state is not None:
        state["guests"] = []
        state["netns"] = None          # gone: a later `down` must not touch a namesake
        state["stopped"] = time.time()
        save_state(state)
    return 0


def cmd_ssh(state_dir, host, command):
    state = load_state(state_dir)
    guest = next((g for g in state["guests"] if g["name"] == host), None)
    if guest is None:
        raise SystemExit("no guest %s in %s" % (host, state_dir))
    argv = ssh_argv(state, guest["address"], " ".join(command) or None)
    os.execvp(argv[0], argv)


def main(argv):
    if len(argv) >= 2 and argv[0] == "up":
        return cmd_up(argv[1])
    if len(argv) >= 2 and argv[0] == "down":
        return cmd_down(argv[1])
    if len(argv) >= 3 and argv[0] == "ssh":
        return cmd_ssh(argv[1], argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RuntimeError as exc:
        log("error: %s" % exc)
        sys.exit(1)
