# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.services against a simulated systemctl (unit states in a file)."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.lbha.cluster.plugins.modules import services

FAKE = r'''
units = state
verb, names = args[0], [a for a in args[1:] if not a.startswith("--")]
if verb == "show":
    blocks = []
    for name in names:
        u = units.get(name, {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""})
        blocks.append("Id=%s\nLoadState=%s\nActiveState=%s\nUnitFileState=%s\nNeedDaemonReload=%s" % (
            name, u["LoadState"], u["ActiveState"], u["UnitFileState"], u.get("NeedDaemonReload", "no")))
    print("\n\n".join(blocks))
elif verb == "daemon-reload":
    for u in units.values():
        u["NeedDaemonReload"] = "no"
elif verb == "enable":
    for name in names:
        units[name]["UnitFileState"] = "enabled"
elif verb == "start":
    for name in names:
        if units[name].get("fails"):
            print("Job for %s failed." % name, file=sys.stderr)
            sys.exit(1)
        units[name]["ActiveState"] = "active"
'''


def unit(active="active", enabled="enabled", **kw):
    return dict(LoadState="loaded", ActiveState=active, UnitFileState=enabled, **kw)


class Systemd(object):
    def __init__(self, fake_command, run_module):
        self.cmd = fake_command("systemctl", FAKE, {})
        self.run_module = run_module

    def set(self, **units):
        self.cmd.set(dict((k.replace("_", "-") + ".service", v) for k, v in units.items()))

    def units(self):
        return self.cmd.state()

    def changes(self):
        return [c for c in self.cmd.calls() if c[0] != "show"]

    def run(self, names, **kw):
        return self.run_module(services.main, dict(names=names, **kw))


@pytest.fixture()
def systemd(fake_command, run_module):
    return Systemd(fake_command, run_module)


def test_enables_and_starts_only_what_needs_it_in_one_call_each(systemd):
    systemd.set(lbha_vip=unit("inactive", "disabled"), firewalld=unit(), lbha_health=unit("failed", "enabled"))
    result, failed = systemd.run(["lbha-vip", "firewalld.service", "lbha-health.service"])
    assert not failed and result["changed"]
    assert result["enabled"] == ["lbha-vip.service"]
    assert result["started"] == ["lbha-vip.service", "lbha-health.service"]
    assert systemd.changes() == [["enable", "--", "lbha-vip.service"],
                                 ["start", "--", "lbha-vip.service", "lbha-health.service"]]
    assert all(u["ActiveState"] == "active" and u["UnitFileState"] == "enabled" for u in systemd.units().values())
    again, _failed = systemd.run(["lbha-vip", "firewalld", "lbha-health"])
    assert not again["changed"] and len(systemd.changes()) == 2


def test_a_unit_changed_on_disk_is_reloaded_first_and_that_is_a_change(systemd):
    systemd.set(lbha_health=unit(NeedDaemonReload="yes"))
    result, _failed = systemd.run(["lbha-health"])
    assert result["changed"] and result["daemon_reload"]
    assert systemd.changes() == [["daemon-reload"]]


def test_a_reload_only_asked_for_is_not_a_change(systemd):
    systemd.set(keepalived=unit())
    result, _failed = systemd.run(["keepalived"], daemon_reload=True)
    assert not result["changed"] and result["daemon_reload"]
    assert systemd.changes() == [["daemon-reload"]]


def test_static_units_are_not_enabled(systemd):
    systemd.set(lbha_thing=unit(enabled="static"))
    result, _failed = systemd.run(["lbha-thing"])
    assert not result["changed"] and systemd.changes() == []


@pytest.mark.parametrize("units, message, calls", [
    # systemd is asked to read its configuration again once, in case the file is new
    (dict(firewalld=unit(active="inactive")), "nosuch.service: no such unit", [["daemon-reload"]]),
    (dict(firewalld=unit(active="inactive"), nosuch=unit(enabled="masked")), "masked", []),
])
def test_a_missing_or_masked_unit_starts_nothing(systemd, units, message, calls):
    systemd.set(**units)
    result, failed = systemd.run(["firewalld", "nosuch"])
    assert failed and message in result["msg"] and systemd.changes() == calls


def test_check_mode_changes_nothing(systemd):
    systemd.set(nginx=unit("inactive", "disabled"))
    result, _failed = systemd.run(["nginx"], _ansible_check_mode=True)
    assert result["changed"] and result["started"] == ["nginx.service"] and systemd.changes() == []


def test_a_start_that_fails_is_reported(systemd):
    systemd.set(keepalived=unit("inactive", fails=True))
    result, failed = systemd.run(["keepalived"])
    assert failed and "start -- keepalived.service failed" in result["msg"] and "Job for" in result["msg"]


@pytest.mark.parametrize("name", ["", "a b", "../x"])
def test_bad_names_are_refused(systemd, name):
    systemd.set()
    result, failed = systemd.run([name])
    assert failed and "is not a unit name" in result["msg"] and systemd.changes() == []


def test_a_unit_written_since_the_last_reload_is_found_after_one(systemd, tmp_path):
    # the fake knows the unit only after a daemon-reload, like systemd with a new unit file
    systemd.set(firewalld=unit())
    fake = systemd.cmd.path.read_text().replace(
        'elif verb == "daemon-reload":\n',
        'elif verb == "daemon-reload":\n    units["lbha-checker.service"] = dict(LoadState="loaded", ActiveState="inactive", '
        'UnitFileState="disabled")\n')
    systemd.cmd.path.write_text(fake)
    result, failed = systemd.run(["firewalld", "lbha-checker"])
    assert not failed and result["changed"] and result["daemon_reload"]
    assert systemd.changes() == [["daemon-reload"], ["enable", "--", "lbha-checker.service"],
                                 ["start", "--", "lbha-checker.service"]]


def test_check_mode_takes_an_unknown_unit_for_one_this_run_would_write(systemd):
    systemd.set(firewalld=unit())
    result, failed = systemd.run(["firewalld", "lbha-checker"], _ansible_check_mode=True)
    assert not failed and result["started"] == ["lbha-checker.service"] and systemd.changes() == []
    assert any("lbha-checker.service" in w for w in result["warnings"])
