# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.cluster_validate in the controller's own process.

The validation is pure Python and runs on the controller anyway: done here it costs no Python
process and no module payload (about half a second of every site.yml run on a small controller).
Same options (checked against the module's argument spec), same result, same errors; the
cluster's secrets (auth_pass) are masked in everything it returns, as the module masks them."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

from ansible_collections.lbha.cluster.plugins.module_utils._args import validate, validate_argument_spec
from ansible_collections.lbha.cluster.plugins.module_utils.model import ValidationError, secrets


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, params = self.validate_argument_spec(argument_spec=validate_argument_spec())
        try:
            hidden = secrets(params["cluster"])
        except (TypeError, ValueError, AttributeError):
            hidden = []
        try:
            out, warnings = validate(params)
        except ValidationError as e:
            result.update(failed=True, msg="The cluster definition is not valid:\n" + "\n".join(e.errors),
                          errors=list(e.errors))
            warnings = e.warnings
        else:
            result.update(out)
        if warnings:
            result["warnings"] = list(warnings)
        # what AnsibleModule does to a module's result with its no_log values
        return remove_values(result, set(hidden))
