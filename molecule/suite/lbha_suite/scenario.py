# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a scenario is and how it must behave, read from its inventory (molecule.yml).

The suite never takes an expectation from the system under test: the topology (hosts, groups,
addresses), the VRRP settings (VIP, VRID, advert_int, priorities, preemption, unicast, mail) and
the forwarding plane come from the same inventory molecule hands to converge. A scenario is
found by ``MOLECULE_SCENARIO_DIRECTORY`` (set by ``molecule verify``) or ``LBHA_SCENARIO``
(a scenario name, for a standalone ``pytest molecule/suite`` against a converged scenario).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import os

import yaml

PROJECT_DIR = os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
# the director role's defaults, for what an inventory does not override
ROLE_DEFAULTS = {"lbha_director_document": "/etc/lbha/cluster.json",
                 "lbha_director_checker_state": "/run/lbha/checker.json",
                 "lbha_director_dataplane": "auto",
                 "lbha_nginx_root": "/var/www/lbha"}
VRRP_STATE_DIR = "/run/lbha/vrrp"       # the notify hook's directory (the role's tmpfiles.d entry)
MAILDIR = "/var/mail/lbha"              # where the client's SMTP receiver stores mail (prepare.yml)


def scenario_dir():
    path = os.environ.get("MOLECULE_SCENARIO_DIRECTORY")
    if path:
        return path
    return os.path.join(PROJECT_DIR, "molecule", os.environ.get("LBHA_SCENARIO", "default"))


def _first(mapping, *keys, **kw):
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return kw.get("default")


class Scenario(object):
    """The inventory of one scenario and the behaviour it asks for."""

    def __init__(self, path):
        self.dir = path
        self.name = os.environ.get("MOLECULE_SCENARIO_NAME") or os.path.basename(path)
        with open(os.path.join(path, "molecule.yml")) as handle:
            self.molecule = yaml.safe_load(handle)
        inventory = (self.molecule.get("provisioner") or {}).get("inventory") or {}
        self.group_vars = (inventory.get("group_vars") or {}).get("all") or {}
        self.host_vars = inventory.get("host_vars") or {}
        self.platforms = self.molecule["platforms"]
        self.groups = {}
        for platform in self.platforms:
            for group in platform.get("groups") or []:
                self.groups.setdefault(group, []).append(platform["name"])
        self.cluster = self.group_vars["lbha_cluster"]
        instance = self.cluster["vrrp_instances"][0]
        self.instance = instance["name"]
        vip = ipaddress.ip_interface(str(instance["virtual_ipaddress"][0]).split()[0])
        self.vip, self.vip_prefix = str(vip.ip), vip.network.prefixlen
        self.virtual_router_id = int(instance["virtual_router_id"])
        self.advert_int = float(instance.get("advert_int", 1))
        self.preempt = not instance.get("nopreempt", False)
        self.unicast = bool(instance.get("unicast") or instance.get("unicast_peers"))
        self.smtp_alert = bool(instance.get("smtp_alert"))
        global_defs = self.cluster.get("global_defs") or {}
        self.mail_from = global_defs.get("notification_email_from")
        vs = self.cluster["virtual_servers"][0]
        self.service_port = int(vs["port"])
        self.delay_loop = float(vs.get("delay_loop", 6))
        self.base_check = dict(vs.get("check") or {})

        self.directors = self._addresses("directors", "lbha_director_address")
        # every instance, with its own priorities and MASTER (per instance, else per host)
        self.instances = [self._instance(raw) for raw in self.cluster["vrrp_instances"]]
        first = self.instances[0]
        self.priorities = first["priorities"]
        self.master = first["master"]
        self.backup = [n for n in sorted(self.directors, key=lambda n: -self.priorities[n]) if n != self.master][0]
        # active-active: the instances do not all have the same MASTER
        self.active_active = len(set(i["master"] for i in self.instances)) > 1
        self.real_servers = self._addresses("real_servers", "lbha_real_server_address")
        self.pages = dict((n, self.var(n, "lbha_nginx_index_content")) for n in self.real_servers)
        # every virtual server with its real servers by inventory host: {address, port, members}
        self.services = [self._service(raw) for raw in self.cluster["virtual_servers"]]
        clients = self.groups.get("clients") or []
        self.client = clients[0] if clients else None
        self.client_address = self.var(self.client, "lbha_client_address") if self.client else None
        self.checks = dict((n, self._check(n)) for n in self.real_servers)
        self.document = self.var(self.master, "lbha_director_document")
        self.checker_state = self.var(self.master, "lbha_director_checker_state")
        self.vrrp_state_file = os.path.join(VRRP_STATE_DIR, "%s.state" % self.instance)
        self.firewalld = bool(self.var(self.master, "lbha_director_firewalld", True))
        self.plane = self._plane()
        self.router_ids = dict((n, str(self.var(n, "lbha_director_router_id") or n)) for n in self.directors)
        self.can_mail = bool(global_defs.get("notification_email")) and bool(global_defs.get("smtp_server"))
        self.global_alerts = dict((k, global_defs.get(k)) for k in ("smtp_alert", "smtp_alert_checker"))

    def _instance(self, raw):
        """``{name, vip, virtual_router_id, priorities, master}`` of one instance of the inventory."""
        own_prio = raw.get("priority") or {}
        own_state = raw.get("state") or {}
        prios = dict((n, int(own_prio[n] if n in own_prio else self.var(n, "lbha_director_priority")))
                     for n in self.directors)
        declared = [n for n in self.directors
                    if str(own_state.get(n, self.var(n, "lbha_director_state", ""))).upper() == "MASTER"]
        vip = ipaddress.ip_interface(str(raw["virtual_ipaddress"][0]).split()[0])
        return {"name": raw["name"], "vip": str(vip.ip), "virtual_router_id": int(raw["virtual_router_id"]),
                "advert_int": float(raw.get("advert_int", 1)), "priorities": prios,
                "master": declared[0] if declared else max(self.directors, key=lambda n: prios[n])}

    def _service(self, raw):
        """``{address, port, protocol, members: {host: address}}`` of one virtual server: its
        group's hosts at their lbha_real_server_address, and the explicit real servers that
        name a host of the inventory."""
        members = {}
        for name in self.groups.get(raw.get("real_servers_group"), []) if raw.get("real_servers_group") else []:
            members[name] = self.real_servers[name]
        for entry in raw.get("real_servers") or []:
            if entry.get("name") in self.real_servers:
                members[entry["name"]] = str(ipaddress.ip_address(str(entry["address"])))
        return {"address": str(ipaddress.ip_address(str(raw["address"]))), "port": int(raw["port"]),
                "protocol": str(raw.get("protocol") or "TCP").lower(), "members": members}

    def real_server_mails(self, name):
        """Whether the directors mail a real server's failure and recovery, by keepalived's rule
        (its own smtp_alert, else global_defs smtp_alert_checker, else smtp_alert, else yes)."""
        if not self.can_mail:
            return False
        for value in (self.var(name, "lbha_real_server_smtp_alert"), self.global_alerts["smtp_alert_checker"],
                      self.global_alerts["smtp_alert"]):
            if value is not None:
                return bool(value)
        return True

    def var(self, host, name, default=None):
        """A variable of a host as the inventory sets it (host_vars, then group_vars, then the role's default)."""
        for source in (self.host_vars.get(host) or {}, self.group_vars):
            if name in source:
                return source[name]
        return ROLE_DEFAULTS.get(name, default)

    def _addresses(self, group, var):
        out = {}
        for name in self.groups.get(group) or []:
            address = self.var(name, var)
            if address is None:
                platform = [p for p in self.platforms if p["name"] == name][0]
                address = platform.get("address") or (platform.get("networks") or [{}])[0].get("ipv4_address")
            out[name] = str(address)
        return out

    def _check(self, name):
        check = dict(self.base_check)
        check.update(self.var(name, "lbha_real_server_check") or {})
        check.setdefault("connect_timeout", 5)
        check.setdefault("retry", check.get("nb_get_retry", 1))
        check.setdefault("delay_before_retry", 1)
        return check

    def _plane(self):
        """The plane the scenario asks for; ``auto`` is what the kernel offers (the containers
        share the host's kernel: IPVS when it is loaded there)."""
        plane = self.var(self.master, "lbha_director_dataplane")
        if plane == "auto":
            return "ipvs" if os.path.exists("/proc/net/ip_vs") else "nftables"
        return plane

    @property
    def slowest_check(self):
        """The check that takes longest to declare a server down (the bound of a removal)."""
        return max(self.checks.values(), key=lambda c: c["connect_timeout"] + c["retry"] * c["delay_before_retry"])

    def summary(self):
        return {"scenario": self.name, "plane": self.plane, "vip": self.vip, "master": self.master,
                "backup": self.backup, "preempt": self.preempt, "unicast": self.unicast,
                "advert_int_s": self.advert_int, "priorities": self.priorities}


_CURRENT = []


def current():
    """The scenario under test (loaded once)."""
    if not _CURRENT:
        _CURRENT.append(Scenario(scenario_dir()))
    return _CURRENT[0]
