# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several systemd units enabled and started in one call: what ``systemctl show`` says of them, and
the ``systemctl`` commands that bring them there. Pure Python, no Ansible import."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NeedDaemonReload")
# `systemctl is-enabled` answers 0 for these: nothing to enable
ENABLED = ("enabled", "enabled-runtime", "static", "indirect", "generated", "alias", "linked", "linked-runtime")


class UnitError(ValueError):
    """A unit that cannot be enabled or started; the message names it."""


def unit_name(name):
    name = str(name).strip()
    if not name or "/" in name or any(c.isspace() for c in name):
        raise UnitError("%r is not a unit name" % name)
    return name if "." in name else name + ".service"


def show_argv(systemctl, names):
    return [systemctl, "show", "--property=" + ",".join(PROPERTIES), "--"] + list(names)


def parse_show(text, names):
    """``systemctl show`` of ``names`` (blocks in the same order, blank-line separated) -> {name: props}."""
    blocks = text.strip("\n").split("\n\n") if text.strip() else []
    if len(blocks) != len(names):
        raise UnitError("systemctl show answered for %d units, %d were asked" % (len(blocks), len(names)))
    out = {}
    for name, block in zip(names, blocks):
        props = {}
        for line in block.splitlines():
            key, _sep, value = line.partition("=")
            props[key] = value
        out[name] = props
    return out


def missing(states):
    """The units systemd does not know (a unit file written since it last looked, or none at all)."""
    return [n for n, p in states.items() if p.get("LoadState") == "not-found"]


def plan(states, daemon_reload=False):
    """``{"daemon_reload": bool, "stale": [...], "enable": [...], "start": [...]}`` for the units of
    ``states``; ``stale`` are the units changed on disk since systemd read them (a reload for them
    is a change, a reload only asked for is not)."""
    for name, props in states.items():
        if props.get("LoadState") == "not-found":
            raise UnitError("%s: no such unit" % name)
        if props.get("LoadState") == "masked" or props.get("UnitFileState") == "masked":
            raise UnitError("%s: the unit is masked (systemctl unmask %s)" % (name, name))
    stale = [n for n, p in states.items() if p.get("NeedDaemonReload") == "yes"]
    return {"daemon_reload": bool(daemon_reload or stale), "stale": stale,
            "enable": [n for n, p in states.items() if p.get("UnitFileState") not in ENABLED],
            "start": [n for n, p in states.items() if p.get("ActiveState") not in ("active", "reloading", "activating")]}


def commands(systemctl, steps):
    out = []
    if steps["daemon_reload"]:
        out.append([systemctl, "daemon-reload"])
    if steps["enable"]:
        out.append([systemctl, "enable", "--"] + steps["enable"])
    if steps["start"]:
        out.append([systemctl, "start", "--"] + steps["start"])
    return out
