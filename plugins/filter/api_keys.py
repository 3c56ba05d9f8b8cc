# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that let the team_api_keys role plan a whole team from one list of its keys.

They reuse the api_key module's own validation and comparison, so the role calls the module
only for keys that need a change. Documented in api_key_plan.yml and api_key_spec_errors.yml.
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.latitudesh.cloud.plugins.module_utils._api_keys import (
    PlanError,
    in_use,
    plan_api_key,
    validate_spec,
)

KEY_OPTIONS = ("name", "state", "read_only", "allowed_ips")


def _declared(key):
    spec = dict((option, key.get(option)) for option in KEY_OPTIONS)
    spec["state"] = spec["state"] or "present"
    if spec["read_only"] is not None:
        # As the module's argument spec does: "no", "false", 0 ... mean false.
        spec["read_only"] = boolean(spec["read_only"])
    return spec


def api_key_spec_errors(teams):
    """Every problem in a list of team declarations, each naming the variable; [] when all is well."""
    errors = []
    if not isinstance(teams, list):
        return ["team_api_keys_teams must be a list of teams, got %s." % type(teams).__name__]
    seen_teams = set()
    for index, team in enumerate(teams):
        where = "team_api_keys_teams[%d]" % index
        if not isinstance(team, dict):
            errors.append("%s must be a dict with name, auth_token and api_keys." % where)
            continue
        label = team.get("name")
        if not isinstance(label, str) or not label.strip() or "/" in label or label.startswith("."):
            errors.append("%s.name must be a non-blank team label without '/' (it names the token directory)." % where)
        elif label in seen_teams:
            errors.append("%s.name %r is declared twice." % (where, label))
        seen_teams.add(label)
        if not isinstance(team.get("auth_token"), str) or not team["auth_token"].strip():
            errors.append("%s.auth_token must be that team's admin token (a non-blank string)." % where)
        keys = team.get("api_keys")
        if not isinstance(keys, list):
            errors.append("%s.api_keys must be a list (it may be empty)." % where)
            continue
        errors.extend(_key_errors(where, keys))
    return errors


def _key_errors(where, keys):
    errors, names = [], set()
    for index, key in enumerate(keys):
        at = "%s.api_keys[%d]" % (where, index)
        if not isinstance(key, dict) or not isinstance(key.get("name"), str):
            errors.append("%s.name is required and must be a string." % at)
            continue
        if "/" in key["name"] or key["name"] in (".", ".."):
            errors.append("%s.name %r must not contain '/' (it names the token file <team>/<name>.token)." % (at, key["name"]))
        if key["name"] in names:
            errors.append("%s.name %r is declared twice in this team." % (at, key["name"]))
        names.add(key["name"])
        ips = key.get("allowed_ips")
        if ips is not None and (not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips)):
            errors.append("%s.allowed_ips must be a list of IP addresses or CIDR networks." % at)
            continue
        if key.get("read_only") is not None:
            try:
                boolean(key["read_only"])
            except TypeError:
                errors.append("%s.read_only must be a boolean, got %r." % (at, key["read_only"]))
                continue
        errors.extend("%s: %s" % (at, message) for message in validate_spec(_declared(key)))
    return errors


def api_key_plan(team_keys, declared, purge=False, auth_token=None):
    """Split a team's declared keys into those that need the api_key module and those that do not.

    ``team_keys`` is ``api_key_info``'s ``api_keys``. Returns ``converge`` (declared keys to pass to
    api_key, each with its ``action``), ``purge`` (undeclared keys to delete, never the key that
    ``auth_token`` is) and the names per outcome for a summary.
    """
    result = dict(converge=[], purge=[], created=[], updated=[], rotated=[], deleted=[], unchanged=[])
    for key in declared or []:
        spec = _declared(key)
        try:
            plan = plan_api_key(team_keys, spec, auth_token)
        except PlanError as exc:
            raise AnsibleFilterError(str(exc))
        kinds = [action for action, _attributes in plan.actions]
        if not kinds:
            result["unchanged"].append(spec["name"])
            continue
        outcome = {"create": "created", "rotate": "rotated", "delete": "deleted"}
        action = next((kind for kind in ("create", "rotate", "delete") if kind in kinds), "update")
        result[outcome.get(action, "updated")].append(spec["name"])
        result["converge"].append(dict(spec, action=action))
    if purge:
        wanted = set(key.get("name") for key in declared or [])
        for key in team_keys:
            if key["name"] not in wanted and not in_use(key, auth_token):
                result["purge"].append({"id": key["id"], "name": key["name"]})
                result["deleted"].append(key["name"])
    return result


class FilterModule(object):
    def filters(self):
        return {"api_key_plan": api_key_plan, "api_key_spec_errors": api_key_spec_errors}
