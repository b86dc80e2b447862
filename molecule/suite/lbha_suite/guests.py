# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The QEMU guests of the molecule `ipvs` scenario: boot, stop, crash, restart, tear down.

The guests sit on a bridge inside an isolated network namespace (no default route, no link to
the host's networks); the namespace itself is the test client, with its address on the bridge,
an SMTP receiver (smtpsink.py) and a python3 wrapper that runs Ansible modules inside it.
Ansible and the suite reach the guests over SSH through `ip netns exec NETNS nc HOST PORT`.

    guests.py up SPEC.json           boot every guest of SPEC, wait for SSH, write STATE_DIR/guests.json
    guests.py down STATE_DIR         kill the guests and the receiver (by the PIDs recorded), delete the netns
    guests.py start STATE_DIR NAME   boot a stopped guest again from its disk, wait for SSH
    guests.py stop STATE_DIR NAME    clean shutdown (systemctl poweroff), wait until qemu exits
    guests.py kill STATE_DIR NAME    power cut: SIGKILL to the guest's qemu
    guests.py ssh STATE_DIR NAME [COMMAND...]   run a command on a guest (debugging aid)

SPEC (JSON): {"state_dir": ..., "image_dir": ..., "netns": ..., "bridge": ..., "client_address":
"1.1.1.10/24", "prefix": 24, "ssh_key": ..., "boot_timeout": 300, "smtp": true,
"guests": [{"name": "lb1", "address": "1.1.1.1", "memory": 256}, ...]}

Standard library only, no relative imports: create.yml runs this file with the host's python3,
and the suite imports it as ``lbha_suite.guests``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import json
import os
import shlex
import signal
import subprocess
import sys
import time

QEMU = "qemu-system-x86_64"
STATE_FILE = "guests.json"
HERE = os.path.dirname(os.path.abspath(__file__))
SMTP_PORT = 25
SHUTDOWN_TIMEOUT = 120
KILL_TIMEOUT = 60


def log(msg):
    print("guests: " + msg, file=sys.stderr, flush=True)


def run(argv, check=True, **kwargs):
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         check=False, **kwargs)
    if check and res.returncode != 0:
        raise RuntimeError("%s failed (rc=%d): %s" % (" ".join(argv), res.returncode,
                                                      (res.stderr or res.stdout).strip()))
    return res


def netns_exists(netns):
    return netns in run(["ip", "netns", "list"]).stdout.split()


def ssh_options(state, timeout=10, master="no"):
    """ssh options that reach the guests through the namespace. Commands share the guest's
    master connection when one runs (start_master), else they connect on their own."""
    return ["-i", state["ssh_key"], "-l", "root",
            "-o", "ProxyCommand=ip netns exec %s nc %%h %%p" % state["netns"],
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % timeout,
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "-o", "ControlMaster=%s" % master, "-o", "ControlPath=%s" % control_path(state, "%h")]


def start_master(state, guest):
    """A background master connection to the guest (each later command skips the key exchange,
    which costs the emulated guest about a second). Its stdio is /dev/null: a master that kept
    a caller's pipe open would make the caller wait for it."""
    forget_connection(state, guest)
    argv = ["ssh"] + ssh_options(state, master="yes") + ["-o", "ControlPersist=yes", "-N", "-f", guest["address"]]
    subprocess.run(argv,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60, check=False)


def control_path(state, host):
    return os.path.join(state["state_dir"], "cm-%s" % host)


def ssh_argv(state, host_address, argv=None, timeout=10):
    """The ssh command line that runs argv (a list, quoted for the remote shell) on a guest."""
    out = ["ssh"] + ssh_options(state, timeout) + [host_address]
    if argv:
        out.append(" ".join(shlex.quote(str(a)) for a in argv))
    return out


def forget_connection(state, guest):
    """Close the multiplexed SSH connection to a guest (its qemu stopped or was killed)."""
    try:
        subprocess.run(["ssh"] + ssh_options(state) + ["-O", "exit", guest["address"]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        # a master that does not answer is as good as gone once its socket is removed below
        log("ssh master of %s did not answer `-O exit` within 30 s" % guest["address"])
    path = control_path(state, guest["address"])
    if os.path.exists(path):
        os.unlink(path)


def mac_for(address):
    octets = [int(x) for x in address.split(".")]
    return "52:54:00:%02x:%02x:%02x" % (octets[1], octets[2], octets[3])


def pid_alive(pid, program, marker):
    """True when pid runs program (basename of argv[0]) with marker among its arguments."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().split(b"\0")
    except (OSError, TypeError):
        return False
    return bool(cmdline) and os.path.basename(cmdline[0]).decode(errors="replace") == program \
        and any(marker.encode() in arg for arg in cmdline)


def qemu_pid_alive(pid, marker):
    return pid_alive(pid, QEMU, marker)


def signal_pid(pid, signum):
    """Send signum to pid; a process that exited since it was looked at is not an error."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def proc_state(pid):
    """pid and its state letter from /proc (D: uninterruptible, Z: zombie), for error messages."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return "%d %s" % (pid, f.read().rsplit(")", 1)[1].split()[0])
    except (OSError, IndexError):
        return "%d gone" % pid


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
    # the client learns the VIP's MAC from the MASTER's gratuitous ARP, as the seed's client does
    for scope in ("all", "default", bridge):
        run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv4.conf.%s.arp_accept=1" % scope])
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


def client_python(spec, state):
    """A python3 that runs inside the namespace: the client's ansible_python_interpreter."""
    path = os.path.join(spec["state_dir"], "client-python")
    with open(path + ".tmp", "w") as f:
        f.write("#!/bin/sh\n# the test client's python3: the host's, inside netns %s\n"
                "exec ip netns exec %s /usr/bin/python3 \"$@\"\n" % (spec["netns"], spec["netns"]))
    os.chmod(path + ".tmp", 0o755)
    os.replace(path + ".tmp", path)
    state["client_python"] = path


def smtp_up(spec, state):
    """The client's SMTP receiver (keepalived's notification e-mails), a Maildir in the state dir."""
    address = spec["client_address"].split("/")[0]
    maildir = os.path.join(spec["state_dir"], "mail")
    logfile = os.path.join(spec["state_dir"], "smtp.log")
    with open(logfile, "w") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", spec["netns"], "/usr/bin/python3",
                                 os.path.join(HERE, "smtpsink.py"), address, str(SMTP_PORT), maildir],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    state["smtp"] = {"pid": proc.pid, "maildir": maildir, "log": logfile, "listen": "%s:%d" % (address, SMTP_PORT)}
    save_state(state)
    deadline = time.time() + 30
    while True:
        with open(logfile) as f:
            if "listening" in f.read():
                return
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("the SMTP receiver did not start: %s" % console_tail(logfile))
        time.sleep(0.1)


def qemu_argv(spec, guest, index, pubkey_b64):
    name = guest["name"]
    image = spec["image_dir"]
    cmdline = " ".join([
        "console=ttyS0", "panic=-1", "quiet", "net.ifnames=0",
        "systemd.hostname=" + name,
        "lbha.ip=%s/%d" % (guest["address"], spec["prefix"]),
        "lbha.key=" + pubkey_b64,
    ])
    return [
        "ip", "netns", "exec", spec["netns"],
        QEMU, "-name", "lbhaq-" + name,
        "-accel", "tcg,thread=multi,tb-size=%d" % spec.get("tb_size", 64),
        "-cpu", "max", "-m", str(guest.get("memory", 256)), "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
        "-serial", "file:" + guest_path(spec, name, ".console.log"), "-no-reboot",
        "-kernel", os.path.join(image, "vmlinux"), "-initrd", os.path.join(image, "initrd.gz"),
        "-append", cmdline,
        # qemu writes every guest write to the file at once (cache=unsafe only skips the host's
        # fsync): a killed qemu loses what the guest had not written yet, as a power cut does
        "-drive", "file=%s,if=virtio,cache=unsafe" % guest_path(spec, name, ".qcow2"),
        "-netdev", "tap,id=n0,ifname=%s-t%d,script=no,downscript=no" % (spec["tap_prefix"], index),
        "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % mac_for(guest["address"]),
        "-device", "virtio-rng-pci",
        "-daemonize", "-pidfile", guest_path(spec, name, ".pid"),
    ]


def guest_path(spec, name, suffix):
    return os.path.join(spec["state_dir"], name + suffix)


def start_guest(spec, index, guest, pubkey_b64, fresh=True):
    """Start the guest's qemu; fresh: a new copy-on-write disk on the image, else the one it had."""
    name = guest["name"]
    disk, pidfile = guest_path(spec, name, ".qcow2"), guest_path(spec, name, ".pid")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    if fresh:
        if os.path.exists(disk):
            os.unlink(disk)
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.join(spec["image_dir"], "base.qcow2"),
             "-F", "qcow2", disk])
    elif not os.path.exists(disk):
        raise RuntimeError("%s: no disk %s to boot again" % (name, disk))
    run(qemu_argv(spec, guest, index, pubkey_b64))
    pid = read_pid(pidfile)
    if pid is None:
        raise RuntimeError("%s: qemu started but wrote no pid file %s" % (name, pidfile))
    return {"name": name, "address": guest["address"], "pid": pid, "index": index,
            "tap": "%s-t%d" % (spec["tap_prefix"], index), "mac": mac_for(guest["address"]),
            "disk": disk, "console": guest_path(spec, name, ".console.log"), "pidfile": pidfile,
            "started": time.time()}


def wait_ssh(state, guests, timeout):
    """Wait until every guest answers SSH; returns {name: seconds since its start}."""
    pending = {g["name"]: g for g in guests}
    ready = {}
    deadline = min(g["started"] for g in guests) + timeout
    while pending:
        for name, guest in list(pending.items()):
            if not qemu_pid_alive(guest["pid"], state["state_dir"]):
                raise RuntimeError("%s: qemu (pid %d) exited during boot; console:\n%s"
                                   % (name, guest["pid"], console_tail(guest["console"])))
            try:
                res = subprocess.run(ssh_argv(state, guest["address"], ["true"], timeout=5),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=False)
            except subprocess.TimeoutExpired:
                forget_connection(state, guest)
                continue
            if res.returncode == 0:
                ready[name] = round(time.time() - guest["started"], 2)
                log("%s (%s) answers SSH after %.1f s" % (name, guest["address"], ready[name]))
                start_master(state, guest)
                del pending[name]
        if pending and time.time() > deadline:
            tails = "\n".join("--- %s\n%s" % (n, console_tail(g["console"]))
                              for n, g in pending.items())
            raise RuntimeError("no SSH from %s within %d s; consoles:\n%s"
                               % (", ".join(sorted(pending)), timeout, tails))
        if pending:
            time.sleep(1)
    return ready


def set_clock(state, guest):
    """Set the guest's clock from the host's (the RTC gives it whole seconds at boot), so that the
    times the guests and the client record are on one timeline; returns the remaining offset."""
    argv = ssh_argv(state, guest["address"], ["date", "+%s.%N"])
    rtt = min(_timed(argv)[1] for _attempt in range(3))
    run(ssh_argv(state, guest["address"], ["date", "-u", "-s", "@%.6f" % (time.time() + rtt / 2.0)]))
    return clock_offset(state, guest)


def _timed(argv):
    before = time.time()
    out = run(argv, timeout=30).stdout.strip()
    after = time.time()
    return float(out), after - before, (before + after) / 2.0


def clock_offset(state, guest, tries=5):
    """The guest's clock minus the host's, in seconds, from the round trip with the least delay
    (the error is at most half that round trip): (offset, round trip)."""
    argv = ssh_argv(state, guest["address"], ["date", "+%s.%N"])
    best = None
    for _attempt in range(tries):
        remote, rtt, middle = _timed(argv)
        if best is None or rtt < best[1]:
            best = (remote - middle, rtt)
    return best


def save_state(state):
    path = os.path.join(state["state_dir"], STATE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, path)


def load_state(state_dir):
    with open(os.path.join(state_dir, STATE_FILE)) as f:
        return json.load(f)


def _pubkey(spec):
    with open(spec["ssh_key"] + ".pub") as f:
        return base64.b64encode(f.read().strip().encode()).decode()


def cmd_up(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    spec.setdefault("tap_prefix", "lbhaq")
    state_dir = spec["state_dir"]
    os.makedirs(state_dir, exist_ok=True)
    pubkey_b64 = _pubkey(spec)
    # "netns" is recorded once this run has created it, so a failure never deletes a
    # namespace that belongs to another run
    state = {"state_dir": state_dir, "netns": None, "bridge": spec["bridge"],
             "ssh_key": spec["ssh_key"], "client_address": spec["client_address"],
             "image_dir": spec["image_dir"], "spec": spec, "guests": [], "started": time.time()}
    save_state(state)        # from here on, `down` can clean up whatever comes next
    try:
        net_up(spec, state)
        client_python(spec, state)
        if spec.get("smtp"):
            smtp_up(spec, state)
        for index, guest in enumerate(spec["guests"], start=1):
            state["guests"].append(start_guest(spec, index, guest, pubkey_b64))
            save_state(state)
        log("started %s" % ", ".join("%s (pid %d)" % (g["name"], g["pid"])
                                     for g in state["guests"]))
        state["ssh_ready_seconds"] = wait_ssh(state, state["guests"], spec.get("boot_timeout", 300))
        state["boot_seconds"] = max(state["ssh_ready_seconds"].values())
        state["clock_offsets"] = dict((g["name"], set_clock(state, g)) for g in state["guests"])
        save_state(state)
    except Exception:
        cmd_down(state_dir)
        raise
    json.dump(state, sys.stdout, indent=2)
    print()
    return 0


def _guest(state, name):
    guest = next((g for g in state["guests"] if g["name"] == name), None)
    if guest is None:
        raise RuntimeError("no guest %s in %s" % (name, state["state_dir"]))
    return guest


def running(state, name):
    return qemu_pid_alive(_guest(state, name)["pid"], state["state_dir"])


def _wait_exit(state, guest, timeout):
    deadline = time.time() + timeout
    while qemu_pid_alive(guest["pid"], state["state_dir"]):
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill(state, name):
    """The guest's power cut: SIGKILL to its qemu (nothing in the guest runs another instruction)."""
    guest = _guest(state, name)
    if qemu_pid_alive(guest["pid"], state["state_dir"]):
        signal_pid(guest["pid"], signal.SIGKILL)
        if not _wait_exit(state, guest, KILL_TIMEOUT):
            raise RuntimeError("%s: qemu pid %d did not exit after SIGKILL" % (name, guest["pid"]))
    forget_connection(state, guest)


def freeze(state, name, frozen=True):
    """Stop (SIGSTOP) or resume (SIGCONT) the guest's qemu: a host that hangs without dying."""
    guest = _guest(state, name)
    if qemu_pid_alive(guest["pid"], state["state_dir"]):
        os.kill(guest["pid"], signal.SIGSTOP if frozen else signal.SIGCONT)


def stop(state, name, timeout=SHUTDOWN_TIMEOUT):
    """A clean shutdown: systemd stops every service, then the guest powers off (qemu exits)."""
    guest = _guest(state, name)
    if not qemu_pid_alive(guest["pid"], state["state_dir"]):
        return
    # the connection drops while systemd shuts down: ssh's status says nothing, qemu's exit does
    subprocess.run(ssh_argv(state, guest["address"], ["systemctl", "--no-block", "poweroff"]),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False)
    if not _wait_exit(state, guest, timeout):
        raise RuntimeError("%s did not power off within %d s; console:\n%s"
                           % (name, timeout, console_tail(guest["console"])))
    forget_connection(state, guest)


def start(state, name):
    """Boot a stopped guest again from its own disk (what it had written survives) and wait for SSH."""
    guest = _guest(state, name)
    if qemu_pid_alive(guest["pid"], state["state_dir"]):
        return guest
    spec = state["spec"]
    forget_connection(state, guest)
    fresh = start_guest(spec, guest["index"], [g for g in spec["guests"] if g["name"] == name][0],
                        _pubkey(spec), fresh=False)
    guest.update(fresh)
    save_state(state)
    wait_ssh(state, [guest], spec.get("boot_timeout", 300))
    state.setdefault("clock_offsets", {})[name] = set_clock(state, guest)
    save_state(state)
    return guest


def cmd_down(state_dir):
    """Kill the qemu processes and the SMTP receiver this state directory started and delete the
    namespace. Works from the pid files too, so a run that failed before writing its state is
    cleaned up."""
    netns = None
    pids = set()
    smtp = None
    try:
        state = load_state(state_dir)
        netns = state.get("netns")
        pids.update(g["pid"] for g in state.get("guests", []))
        smtp = state.get("smtp")
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
            signal_pid(pid, signal.SIGKILL)
    # `ip netns exec` execs the receiver: the pid runs python3 by the time it is stopped
    if smtp and any(pid_alive(smtp["pid"], program, smtp["maildir"]) for program in ("ip", "python3")):
        log("stopping the SMTP receiver (pid %d)" % smtp["pid"])
        signal_pid(smtp["pid"], signal.SIGTERM)
    # a killed qemu exits once its guest memory is released; on a loaded 2-core host that has
    # taken longer than 10 s, so the wait is generous and names what it waited for
    deadline = time.time() + KILL_TIMEOUT
    while any(qemu_pid_alive(p, state_dir) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if qemu_pid_alive(p, state_dir)]
    if left:
        raise RuntimeError("qemu pids %s did not exit within %d s of SIGKILL (states: %s)"
                           % (left, KILL_TIMEOUT, ", ".join(proc_state(p) for p in left)))
    if state is not None:
        for guest in state.get("guests", []):
            forget_connection(state, guest)
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
        state["smtp"] = None
        state["stopped"] = time.time()
        save_state(state)
    return 0


def cmd_ssh(state_dir, host, command):
    state = load_state(state_dir)
    argv = ssh_argv(state, _guest(state, host)["address"])
    if command:
        argv.append(" ".join(command))
    os.execvp(argv[0], argv)


def main(argv):
    if len(argv) >= 2 and argv[0] == "up":
        return cmd_up(argv[1])
    if len(argv) >= 2 and argv[0] == "down":
        return cmd_down(argv[1])
    if len(argv) >= 3 and argv[0] in ("start", "stop", "kill"):
        state = load_state(argv[1])
        {"start": start, "stop": stop, "kill": kill}[argv[0]](state, argv[2])
        return 0
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
