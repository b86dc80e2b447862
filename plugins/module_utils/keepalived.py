# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render keepalived.conf for one director from the normalised model, and test it.

:func:`render` is deterministic: the same model gives the same bytes (the order is the
user's order for lists, a fixed order for keywords), 4-space indentation, keepalived 2.2
keywords (``retry``, not the seed's ``nb_get_retry``). With the ``nftables`` data plane no
``virtual_server`` is rendered: keepalived then does VRRP only (it exits on a kernel without
IPVS when it sees one) and the checker daemon forwards.

:func:`config_test` runs ``keepalived -t -f FILE`` and returns keepalived's own messages.
Pure Python 3, standard library only.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import tempfile

HEADER = "# Managed by lbha.cluster - do not edit: changes are overwritten on the next run."
MASK = "********"
INDENT = "    "


# keepalived reads a line into a 1024-byte buffer: a longer line is cut and its rest read as a
# line of its own, so no rendered line may be longer than this (the model's limits keep every
# line shorter; render() refuses to write one that is not).
MAX_LINE = 1022


def _fmt(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # keepalived reads times with at most 6 decimals (microseconds)
        return ("%.6f" % value).rstrip("0").rstrip(".")
    return str(value)


def _codes(codes):
    """HTTP status codes as keepalived's ``status_code`` words: runs of 3 or more as ranges."""
    words = []
    codes = sorted(set(codes))
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        if j - i >= 2:
            words.append("%d-%d" % (codes[i], codes[j]))
        else:
            words.extend(str(c) for c in codes[i:j + 1])
        i = j + 1
    return " ".join(words)


def _endpoint(address, port):
    """``ADDRESS PORT``, or ``ADDRESS`` alone for a fwmark service (port None)."""
    return address if port is None else "%s %d" % (address, port)


class _Writer(object):
    def __init__(self):
        self.lines = []
        self.depth = 0

    def line(self, text=""):
        self.lines.append((INDENT * self.depth + text) if text else "")

    def kv(self, key, value):
        if value is None or value is False:
            return
        if value is True:
            self.line(key)
        else:
            self.line("%s %s" % (key, _fmt(value)))

    def flag(self, key, value):
        """A true/false keyword written whenever it is set, false included (keepalived's
        smtp_alert: unset means "inherit", which differs from false)."""
        if value is not None:
            self.line("%s %s" % (key, _fmt(bool(value))))

    def open(self, text):
        self.line(text + " {")
        self.depth += 1

    def close(self):
        self.depth -= 1
        self.line("}")

    def block(self, name, items):
        self.open(name)
        for item in items:
            self.line(str(item))
        self.close()


def _quote(script):
    return '"%s"' % script


def _global_defs(w, gd):
    w.open("global_defs")
    if gd.get("notification_email"):
        w.block("notification_email", gd["notification_email"])
    w.kv("notification_email_from", gd.get("notification_email_from"))
    if gd.get("smtp_server"):
        w.line("smtp_server %s%s" % (gd["smtp_server"], " %d" % gd["smtp_port"] if gd.get("smtp_port") else ""))
    w.kv("smtp_helo_name", gd.get("smtp_helo_name"))
    w.kv("smtp_connect_timeout", gd.get("smtp_connect_timeout"))
    for key in ("smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker"):
        w.flag(key, gd.get(key))
    w.kv("router_id", gd.get("router_id"))
    w.kv("vrrp_strict", gd.get("vrrp_strict"))
    w.kv("vrrp_skip_check_adv_addr", gd.get("vrrp_skip_check_adv_addr"))
    w.kv("vrrp_garp_interval", gd.get("vrrp_garp_interval"))
    w.kv("vrrp_gna_interval", gd.get("vrrp_gna_interval"))
    w.kv("enable_script_security", gd.get("enable_script_security"))
    w.kv("script_user", gd.get("script_user"))
    sync = gd.get("lvs_sync_daemon")
    if sync:
        options = "".join(" %s %s" % (key, sync[key]) for key in ("id", "maxlen", "port", "ttl", "group")
                          if sync.get(key) is not None)
        w.line("lvs_sync_daemon %s %s%s" % (sync["interface"], sync["instance"], options))
    w.close()


def _vrrp_script(w, s):
    w.open("vrrp_script %s" % s["name"])
    w.line("script %s" % _quote(s["script"]))
    for key in ("interval", "timeout", "weight", "rise", "fall", "user"):
        w.kv(key, s.get(key))
    w.kv("init_fail", s.get("init_fail"))
    w.close()


def _vrrp_instance(w, inst, notify_script, mask):
    w.open("vrrp_instance %s" % inst["name"])
    w.kv("state", inst.get("state"))
    w.kv("interface", inst["interface"])
    w.kv("virtual_router_id", inst["virtual_router_id"])
    w.kv("priority", inst.get("priority"))
    w.kv("advert_int", inst["advert_int"])
    if inst.get("version") and inst["version"] != 2:
        w.kv("version", inst["version"])
    w.kv("nopreempt", inst.get("nopreempt"))
    if inst.get("preempt_delay") is not None:
        w.kv("preempt_delay", inst["preempt_delay"])
    auth = inst.get("authentication")
    if auth:
        w.open("authentication")
        w.kv("auth_type", auth["auth_type"])
        w.kv("auth_pass", MASK if mask else auth["auth_pass"])
        w.close()
    if inst.get("unicast_src_ip"):
        w.kv("unicast_src_ip", inst["unicast_src_ip"])
        if inst.get("unicast_peer"):
            w.block("unicast_peer", inst["unicast_peer"])
    w.open("virtual_ipaddress")
    for vip in inst["virtual_ipaddress"]:
        text = vip["cidr"]
        if vip.get("dev"):
            text += " dev %s" % vip["dev"]
        if vip.get("label"):
            text += " label %s" % vip["label"]
        if vip.get("preferred_lft") is not None:
            text += " preferred_lft %d" % vip["preferred_lft"]
        w.line(text)
    w.close()
    if inst.get("track_interface"):
        w.block("track_interface", inst["track_interface"])
    if inst.get("track_script"):
        w.block("track_script", inst["track_script"])
    w.flag("smtp_alert", inst.get("smtp_alert"))
    for key in ("garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat"):
        if inst.get(key) is not None:
            w.kv(key, inst[key])
    if notify_script:
        w.line("notify %s" % _quote(notify_script))
    for key in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
        if inst.get(key):
            w.line("%s %s" % (key, _quote(inst[key])))
    w.close()


def _sync_group(w, g):
    w.open("vrrp_sync_group %s" % g["name"])
    w.block("group", g["group"])
    w.flag("smtp_alert", g.get("smtp_alert"))
    w.close()


def _check(w, check):
    w.open(check["type"])
    if check["type"] == "MISC_CHECK":
        w.line("misc_path %s" % _quote(check["misc_path"]))
        w.kv("misc_timeout", check.get("misc_timeout"))
        w.kv("misc_dynamic", check.get("misc_dynamic"))
    else:
        for url in check.get("url") or []:
            w.open("url")
            w.kv("path", url["path"])
            if url.get("digest"):
                w.kv("digest", url["digest"])
            if url.get("status_code"):
                w.kv("status_code", _codes(url["status_code"]))
            w.close()
        w.kv("virtualhost", check.get("virtualhost"))
        w.kv("connect_ip", check.get("connect_ip"))
        w.kv("connect_timeout", check.get("connect_timeout"))
    w.kv("retry", check.get("retry"))
    w.kv("delay_before_retry", check.get("delay_before_retry"))
    if check["type"] != "MISC_CHECK":
        w.kv("connect_port", check.get("connect_port"))
    w.close()


def _virtual_server(w, vs):
    fwmark = vs.get("fwmark")
    if fwmark is not None:
        w.open("virtual_server fwmark %d" % fwmark)
    else:
        w.open("virtual_server %s %d" % (vs["address"], vs["port"]))
    w.kv("delay_loop", vs["delay_loop"])
    w.kv("lb_algo", vs["lb_algo"])
    w.kv("lb_kind", vs["lb_kind"])
    if fwmark is None:
        w.kv("protocol", vs["protocol"])
    if vs.get("persistence_timeout"):
        w.kv("persistence_timeout", vs["persistence_timeout"])
        w.kv("persistence_granularity", vs.get("persistence_granularity"))
    if vs.get("quorum") not in (None, 1):
        w.kv("quorum", vs["quorum"])
    if vs.get("hysteresis"):
        w.kv("hysteresis", vs["hysteresis"])
    for key in ("alpha", "omega", "ha_suspend"):
        w.kv(key, vs.get(key))
    w.kv("virtualhost", vs.get("virtualhost"))
    w.flag("smtp_alert", vs.get("smtp_alert"))
    if vs.get("sorry_server"):
        sorry = vs["sorry_server"]
        w.line("sorry_server %s" % _endpoint(sorry["address"], None if fwmark is not None else sorry["port"]))
    for rs in vs["real_servers"]:
        w.line()
        if rs.get("name"):
            w.line("# %s" % rs["name"])
        w.open("real_server %s" % _endpoint(rs["address"], None if fwmark is not None else rs["port"]))
        w.kv("weight", rs["weight"])
        w.kv("inhibit_on_failure", rs.get("inhibit_on_failure"))
        w.flag("smtp_alert", rs.get("smtp_alert"))
        checks = rs.get("check")
        for check in checks if isinstance(checks, list) else [checks] if checks else []:
            _check(w, check)
        w.close()
    w.close()


def render(model, mask=False):
    """keepalived.conf text for the director of ``model`` (from ``model.normalize``).

    ``mask`` replaces every auth_pass by ``********`` (for diffs and logs).
    """
    w = _Writer()
    w.line(HEADER)
    host = model.get("host") or {}
    if host.get("name"):
        w.line("# Director %s, data plane %s." % (host["name"], model.get("dataplane", "ipvs")))
    w.line()
    _global_defs(w, model["global_defs"])
    for s in model.get("vrrp_scripts") or []:
        w.line()
        _vrrp_script(w, s)
    for inst in model["vrrp_instances"]:
        w.line()
        _vrrp_instance(w, inst, model.get("notify_script"), mask)
    for g in model.get("vrrp_sync_groups") or []:
        w.line()
        _sync_group(w, g)
    if model.get("dataplane", "ipvs") == "ipvs":
        for vs in model.get("virtual_servers") or []:
            w.line()
            _virtual_server(w, vs)
    elif model.get("virtual_servers"):
        w.line()
        w.line("# Virtual servers: forwarded by lbha-checker through nftables (see /etc/lbha/cluster.json).")
    for number, line in enumerate(w.lines, 1):
        if len(line.encode("utf-8", "surrogatepass")) > MAX_LINE or "\n" in line or "\r" in line:
            raise ValueError("line %d of the rendered keepalived.conf would not be read as one line by "
                             "keepalived (longer than %d bytes or holding a line break): %r..."
                             % (number, MAX_LINE, line[:60]))
    return "\n".join(w.lines) + "\n"


def mask_secrets(text, secrets):
    """Replace every secret value in ``text`` by ``********``."""
    for s in sorted(set(x for x in secrets if x), key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


# ---------------------------------------------------------------------------------------------
# keepalived -t


_SCRIPT_USER_RE = re.compile(r"^(\s*script_user\s+)\S+.*$", re.M)
_USER_LINE_RE = re.compile(r"^\s*user\s+\S+.*\n", re.M)


def _killed_by_sigterm(rc):
    return rc in (-15, 143)


def config_test(path, run, binary="keepalived"):
    """Run ``keepalived -t -f path`` through ``run(argv) -> (rc, stdout, stderr)``.

    ``run`` is the caller's way of running a program (``AnsibleModule.run_command`` in a
    module). Returns ``(ok, messages, notes)``: ``messages`` is what keepalived printed (its config test
    writes to stderr), ``notes`` explains any workaround used.

    keepalived before 2.2.8 kills itself with SIGTERM in a config test when a script runs as a
    non-root ``script_user`` (keepalived issues #2587/#2617, fixed by commit aae8e91). By then it
    has already resolved the user, so on that exit the test is repeated on a copy with
    ``script_user root`` and no per-script ``user``, which checks everything else.
    """
    rc, out, err = run([binary, "-t", "-f", path])
    notes = []
    if _killed_by_sigterm(rc) and not err.strip():
        with open(path) as f:
            text = f.read()
        copy_text = _USER_LINE_RE.sub("", _SCRIPT_USER_RE.sub(r"\1root", text))
        fd, tmp = tempfile.mkstemp(prefix="lbha-keepalived-test-", suffix=".conf")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(copy_text)
            rc, out, err = run([binary, "-t", "-f", tmp])
            err = err.replace(tmp, path)
        finally:
            os.unlink(tmp)
        notes.append("keepalived's config test terminated itself (a keepalived < 2.2.8 bug with "
                     "script_user); the file was tested with script_user root instead")
    messages = "\n".join(x for x in (err.strip(), out.strip()) if x)
    if rc != 0 and not messages:
        messages = "keepalived -t exited with status %d" % rc
    return rc == 0, messages, notes
