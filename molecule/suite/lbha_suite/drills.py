# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the fault drills share (test_faults.py on every plane, the nftables plane's own drills in
test_plane_nftables.py): their bounds, the playbooks' variables, and how they kill a unit."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .cluster import (CLIENT, DIRECTOR_BACKUP, DIRECTORS, DRIVER, SCENARIO, master_down_interval, vrrp_state,
                      wait_for)
from .playbooks import run_playbook

OPS_TIMEOUT = 15            # lbha_operations_timeout of the playbooks the drills run (s)
PLAYBOOK_VARS = {"lbha_operations_probe_host": CLIENT, "lbha_operations_timeout": OPS_TIMEOUT}
KILLS_PAST_LIMIT = 7        # systemd's default start limit is 5 starts in 10 s
# plane-check: interval 1 s, fall 3 (the model's PLANE_SCRIPT_TIMERS)
PLANE_FAULT = 3 * 1.0
STATUS_SECONDS = 30 * DRIVER.slack   # the status playbook's run (an emulated guest is slower)


def takeover_bound():
    return master_down_interval(SCENARIO.advert_int, SCENARIO.priorities[DIRECTOR_BACKUP]) + 2.0


def masters(topology):
    return sorted(name for name in DIRECTORS if vrrp_state(topology[name]) == "MASTER")


def status(inventory_path):
    return run_playbook(inventory_path, "status")


def main_pid(host, unit):
    out = host.check("systemctl", "show", "-p", "MainPID", "--value", unit).strip()
    return int(out) if out.isdigit() else 0


def kill_past_the_start_limit(host, unit, kills=KILLS_PAST_LIMIT):
    """SIGKILL the unit's main process ``kills`` times, each time once systemd has started a new one."""
    for n in range(kills):
        pid = wait_for(lambda: main_pid(host, unit), 15, "%s to run (kill %d of %d)" % (unit, n + 1, kills))
        host.check("systemctl", "kill", "--signal=KILL", unit)
        wait_for(lambda pid=pid: main_pid(host, unit) not in (0, pid), 15,
                 "systemd to start %s again after kill %d of %d" % (unit, n + 1, kills))
