# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that take the cluster definition (doc fragment ``lbha.cluster.cluster``),
and how they keep its secrets out of their output and out of the log.

``AnsibleModule`` logs its invocation (syslog, the journal) while it is being constructed, before
any code of the module runs: a module that only added ``auth_pass`` to ``no_log_values`` after
that had already written it to every director's journal. :func:`cluster_module` builds the
module with the secrets registered before that first log line. ``no_log`` on the ``cluster``
option is not the way: Ansible would then treat every leaf value of the definition (``80``,
``TCP``, ``eth0``, ...) as a secret and mask it in every message the module returns."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .keepalived import render
from .model import DEFAULT_NOTIFY_SCRIPT, secrets, validate_cluster

try:
    from ansible.module_utils.basic import AnsibleModule
except ImportError:  # the checker daemon imports this package without Ansible
    AnsibleModule = object


def cluster_argument_spec(**more):
    """The argument spec of ``cluster``, ``directors``, ``real_server_hosts``, ``dataplane``,
    ``notify_script`` and ``script_user``, plus ``more``."""
    spec = dict(
        cluster=dict(type="dict", required=True),
        directors=dict(type="list", elements="dict"),
        real_server_hosts=dict(type="dict", default={}),
        dataplane=dict(type="str", choices=["ipvs", "nftables"], default="ipvs"),
        notify_script=dict(type="str", default=DEFAULT_NOTIFY_SCRIPT),
        script_user=dict(type="str"),
    )
    spec.update(more)
    return spec


def validate_argument_spec():
    """The options of lbha.cluster.cluster_validate (its module and its action plugin)."""
    return cluster_argument_spec(directors=dict(type="list", elements="dict", required=True),
                                 dataplanes=dict(type="dict", default={}))


def validate(params):
    """What lbha.cluster.cluster_validate returns for its (checked) ``params``: ``(result, warnings)``;
    raises the model's ValidationError (``errors``, ``warnings``) for a definition that is not valid.
    Every director's keepalived.conf is rendered in memory."""
    p = params
    result = validate_cluster(p["cluster"], p["directors"], p["real_server_hosts"], p["dataplane"],
                              p["notify_script"], p["script_user"], dataplanes=p["dataplanes"])
    summary = {}
    any_model = None
    for name, model in sorted(result["directors"].items()):
        render(model)  # every director's file must render
        any_model = model
        summary[name] = dict(priority=model["host"]["priority"], router_id=model["host"]["router_id"],
                             state=dict((i["name"], i["state"]) for i in model["vrrp_instances"]),
                             priorities=dict((i["name"], i["priority"]) for i in model["vrrp_instances"]))
    services = []
    vips = []
    if any_model is not None:
        services = [dict(address=vs["address"], port=vs["port"], protocol=vs["protocol"],
                         lb_kind=vs["lb_kind"], real_servers=len(vs["real_servers"]))
                    for vs in any_model["virtual_servers"]]
        vips = sorted(set(v["address"] for i in any_model["vrrp_instances"] for v in i["virtual_ipaddress"]))
    return dict(changed=False, directors=summary, virtual_services=services, vips=vips), result["warnings"]


def hide_secrets(module):
    """Mask every auth_pass of the ``cluster`` option in the module's output.

    A definition too broken to read secrets from is left to the model, which says what is wrong.
    """
    try:
        found = secrets(module.params["cluster"])
    except (TypeError, ValueError, AttributeError):
        found = []
    for secret in found:
        module.no_log_values.add(secret)


class _ClusterModule(AnsibleModule):
    """An AnsibleModule that masks the cluster's secrets before it logs its invocation."""

    def _log_invocation(self):
        hide_secrets(self)
        super(_ClusterModule, self)._log_invocation()


def cluster_module(**kwargs):
    """``AnsibleModule(**kwargs)`` for a module that takes ``cluster``: every auth_pass is in
    ``no_log_values`` before the invocation is logged, so neither the journal nor the module's
    result (``invocation``, messages, diffs) ever holds one."""
    module = _ClusterModule(**kwargs)
    hide_secrets(module)
    return module
