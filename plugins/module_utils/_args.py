# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that take the cluster definition (doc fragment ``lbha.cluster.cluster``),
and how they keep its secrets out of their output."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .model import DEFAULT_NOTIFY_SCRIPT, secrets


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
