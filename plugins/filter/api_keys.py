# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that let the team_api_keys role plan a whole team from one list of its keys.

They reuse the api_key module's own validation and comparison, so the role calls the module
only for keys that need a change. Documented in api_key_plan.yml, api_key_spec_errors.yml and
api_key_summary.yml. Pure: no request is sent, and nothing that speaks HTTP is imported.
"""

import os
import unicodedata
from datetime import datetime, timezone

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.latitudesh.cloud.plugins.filter.api_key_audit import (
    DAY,
    FINDINGS,
    _days_option,
    _parse_time,
    api_key_audit,
)
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_keys import (
    PlanError,
    in_use,
    plan_api_key,
    validate_spec,
)
from ansible_collections.latitudesh.cloud.plugins.plugin_utils._token_store import (
    JOINERS,
    TOKEN_SUFFIX,
    is_selector,
    name_problem,
    path_problem,
)

KEY_OPTIONS = ("name", "id", "state", "read_only", "allowed_ips")
OUTCOMES = ("created", "updated", "rotated", "deleted", "unchanged")


def _declared(key):
    spec = dict((option, key.get(option)) for option in KEY_OPTIONS)
    spec["state"] = spec["state"] or "present"
    if spec["read_only"] is not None:
        # As the module's argument spec does: "no", "false", 0 ... mean false.
        spec["read_only"] = boolean(spec["read_only"])
    return spec


def file_name_problem(name, suffix=""):
    """Why ``name`` + ``suffix`` cannot be a file or directory name of the token directory, or None."""
    if isinstance(name, str) and name.startswith(".") and name not in (".", ".."):
        return "starts with '.' (the token directory keeps its lock and records in such files)"
    problem = name_problem(name)
    if problem is None and suffix:
        problem = name_problem(name + suffix)
        if problem:
            problem = "gives the file name %r, which %s" % (name + suffix, problem) if len(name) < 40 else (
                "gives a file name (with %r) that %s" % (suffix, problem))
    return problem


def api_key_spec_errors(teams, token_dir=None, base_dir=None):
    """Every problem in a list of team declarations, each naming the variable; [] when all is well.

    With ``token_dir`` (the role's team_api_keys_token_dir), each key's token file path
    ``<token_dir>/<team>/<name>.token`` is checked as the api_key action checks token_path, as written and
    once ``~`` is expanded and a relative path joined to ``base_dir`` (the playbook's directory), so that a
    path it or the file system would refuse stops the run before any request instead of after the first keys."""
    errors = []
    if not isinstance(teams, list):
        return ["team_api_keys_teams must be a list of teams, got %s." % type(teams).__name__]
    seen_teams, token_owner = {}, {}
    for index, team in enumerate(teams):
        where = "team_api_keys_teams[%d]" % index
        if not isinstance(team, dict):
            errors.append("%s must be a dict with name, auth_token and api_keys." % where)
            continue
        label = team.get("name")
        if not isinstance(label, str) or not label.strip():
            errors.append("%s.name must be a non-blank team label (it names the token directory)." % where)
        else:
            problem, clash = file_name_problem(label), _looks_like(label, seen_teams)
            if problem:
                errors.append("%s.name %s %s; it names the team's token directory, so choose a label that is a "
                              "plain directory name." % (where, _shown(label), problem))
            elif clash:
                errors.append("%s.name %s %s." % (where, _shown(label), clash))
            seen_teams.setdefault(_folded(label), label)
        in_team = " (team %s)" % _shown(label) if isinstance(label, str) and label.strip() else ""
        if not isinstance(team.get("auth_token"), str) or not team["auth_token"].strip():
            errors.append("%s.auth_token%s must be that team's admin token (a non-blank string)." % (where, in_team))
        elif team["auth_token"].strip() in token_owner:
            # One token is one team: two labels would plan (and purge) the same keys into two directories.
            errors.append("%s.auth_token%s is the same token as %s: a token belongs to one team, so declare that "
                          "team once, with all its keys." % (where, in_team, token_owner[team["auth_token"].strip()]))
        else:
            token_owner[team["auth_token"].strip()] = "team_api_keys_teams[%d].auth_token%s" % (index, in_team)
        keys = team.get("api_keys")
        if not isinstance(keys, list):
            errors.append("%s.api_keys%s must be a list (it may be empty)." % (where, in_team))
            continue
        errors.extend(_key_errors(where, keys, label if isinstance(label, str) else None))
        if isinstance(token_dir, str) and isinstance(label, str) and label.strip() and not file_name_problem(label):
            errors.extend(_path_errors(where, keys, token_dir, label, base_dir))
    return errors


def _path_errors(where, keys, token_dir, team, base_dir):
    """Problems of the token file paths that the names alone do not show (the whole path's length)."""
    errors = []
    for index, key in enumerate(keys):
        if isinstance(key, dict) and isinstance(key.get("name"), str) and not file_name_problem(key["name"], TOKEN_SUFFIX):
            path = "%s/%s/%s%s" % (token_dir, team, key["name"], TOKEN_SUFFIX)  # as the role writes it
            full = os.path.expanduser(path)
            full = os.path.normpath(os.path.join(base_dir, full) if isinstance(base_dir, str) else full)
            problem = path_problem(path) or path_problem(full)
            if problem:
                errors.append("%s.api_keys[%d] (key %s in team %s): its token file <token_dir>/<team>/<name>.token: %s; "
                              "choose a shorter team_api_keys_token_dir, team label or key name."
                              % (where, index, _shown(key["name"]), _shown(team), problem.replace("token_path ", "the path ", 1)))
    return errors


def _folded(name):
    """``name`` as a case- and normalization-insensitive file system (macOS) compares file names, without the
    joiners and variation selectors (allowed inside non-ASCII names, they show as nothing)."""
    return "".join(char for char in unicodedata.normalize("NFC", name).casefold()
                   if char not in JOINERS and not is_selector(char))


def _folded_twin(team_keys, name, itself):
    """Another key of the team (not ``itself``) whose name differs from ``name`` but folds the same, or None."""
    folded = _folded(name)
    return next((key for key in team_keys if key["name"] != name and _folded(key["name"]) == folded
                 and (itself is None or key["id"] != itself.get("id"))), None)


def _looks_like(name, seen):
    """Why ``name`` clashes with a name of ``seen`` (folded: name), or None: the same name, or one that folds
    the same (letter case, NFC/NFD, joiners and selectors), whose token file would be the same file on macOS."""
    other = seen.get(_folded(name))
    if other is None:
        return None
    if other == name:
        return "is declared twice"
    return ("differs from %s only in letter case, Unicode form (NFC, NFD) or an invisible joiner or selector, so "
            "their token files would be one file on macOS and look alike elsewhere: choose names that differ in more "
            "than that" % _shown(other))


def _shown(text):
    """A name for a message: quoted, cut when long, with control characters escaped."""
    shown = repr(text if len(text) <= 60 else text[:40] + "...")
    return shown


def _key_errors(where, keys, team):
    errors, names, ids = [], {}, set()
    for index, key in enumerate(keys):
        at = "%s.api_keys[%d]" % (where, index)
        if not isinstance(key, dict) or not isinstance(key.get("name"), str):
            errors.append("%s.name is required and must be a string." % at)
            continue
        name = key["name"]
        in_team = " in team %s" % _shown(team) if team is not None else ""
        problem = file_name_problem(name, TOKEN_SUFFIX)
        if problem:
            errors.append("%s.name %s%s %s; the key's token file is <team>/<name>.token, so choose a name that "
                          "is a plain file name." % (at, _shown(name), in_team, problem))
        clash = _looks_like(name, names)
        if clash == "is declared twice":
            errors.append("%s.name %r is declared twice%s." % (at, name, in_team or " in this team"))
        elif clash:
            errors.append("%s.name %s%s %s." % (at, _shown(name), in_team, clash))
        names.setdefault(_folded(name), name)
        at = "%s (key %s%s)" % (at, _shown(name), in_team)
        if key.get("id") is not None:
            if not isinstance(key["id"], str):
                errors.append("%s: id must be a string such as tok_x1ZJrdx5qg4LV, got %s." % (at, type(key["id"]).__name__))
                continue
            if key["id"] in ids:
                errors.append("%s: id %r is declared twice in this team." % (at, key["id"]))
            ids.add(key["id"])
        ips = key.get("allowed_ips")
        if ips is not None and (not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips)):
            errors.append("%s: allowed_ips must be a list of IP addresses or CIDR networks." % at)
            continue
        if key.get("read_only") is not None:
            try:
                boolean(key["read_only"])
            except TypeError:
                errors.append("%s: read_only must be a boolean, got %r." % (at, key["read_only"]))
                continue
        if key.get("max_token_age_days") is not None:
            try:
                _days_option(key["max_token_age_days"], "max_token_age_days")
            except AnsibleFilterError:
                errors.append("%s: max_token_age_days must be a whole number of days (0 or more), got %r."
                              % (at, key["max_token_age_days"]))
        errors.extend("%s: %s" % (at, message) for message in validate_spec(_declared(key)))
    return errors


def _plan_error_message(exc, team, spec):
    """Advice that the role can follow, for a planning error of one declared key."""
    where = "Team %r, key %r" % (team, spec["name"]) if team is not None else "Key %r" % spec["name"]
    if exc.reason == "duplicate_name":
        return ("%s: %d API keys in the team have this name (ids: %s), so the name does not tell which one to "
                "manage. Add `id: <one of these ids>` to this key in team_api_keys_teams (and delete or rename the "
                "other keys), then run the role again. Nothing was changed."
                % (where, len(exc.ids), ", ".join(exc.ids)))
    if exc.reason == "key_in_use":
        verb = "delete" if spec["state"] == "absent" else "rotate"
        return ("%s: this is the key that the team's auth_token belongs to (id %s); to %s it would lock the role "
                "out of the team. Give the team another admin token in team_api_keys_teams, or keep this key's "
                "state present. Nothing was changed." % (where, exc.ids[0], verb))
    if exc.reason == "missing_id":
        return ("%s: no API key with id %s exists in this team. Remove id from the declaration to create a new "
                "key with this name, or correct the id. Nothing was changed." % (where, spec["id"]))
    return "%s: %s" % (where, exc)


def api_key_plan(team_keys, declared, purge=False, auth_token=None, team=None, token_dir=None, token_files=None,
                 reissue_missing=False, warn_missing=False, max_token_age_days=None, token_issued_at=None, now=None):
    """Split a team's declared keys into those that need the api_key module and those that do not.

    ``team_keys`` is ``api_key_info``'s ``api_keys``. Returns ``converge`` (declared keys to pass to
    api_key, each with its ``action``), ``purge`` (undeclared keys to delete, never the key that
    ``auth_token`` is), the names per outcome for a summary, and ``errors`` (messages for keys that
    cannot be planned, naming the team and key). With ``token_dir`` (the team's token directory),
    each item gets its ``token_path``; with ``token_files`` (the ``files`` that ``token_dir`` or
    ``ansible.builtin.find`` returned for that directory), a declared key that exists without a token
    file is listed in ``missing_tokens`` (with ``warn_missing``, an Ansible warning names it and the
    fix) or, when ``reissue_missing`` is true, converged with action ``reissue`` (rotated into the file).

    Rotation by token age: a declared key with a ``max_token_age_days`` (its own, else the argument)
    whose current token was issued (``token_issued_at``: key id -> ISO time, from
    ``api_key_token_ages``) more than that many days before ``now`` is rotated (listed in
    ``too_old``); a key whose token age is not known is listed in ``token_age_unknown``, never
    rotated blindly. The age is the token's: a settings change (PATCH) does not reset it.
    """
    result = dict(converge=[], purge=[], errors=[], missing_tokens=[], too_old=[], token_age_unknown=[],
                  token_age_limits={})
    max_token_age_days = _role_wide_maximum(max_token_age_days, "api_key_plan")
    now = datetime.now(timezone.utc) if now in (None, "") else _parse_time(now, "api_key_plan: now")
    issued = dict((key_id, _parse_time(value, "api_key_plan: token_issued_at[%r]" % key_id))
                  for key_id, value in (token_issued_at or {}).items() if value)
    for outcome in OUTCOMES:
        result[outcome] = []
    files = _files_by_name(token_files)
    declared = declared or []
    for key in declared:
        spec = _declared(key)
        try:
            plan = plan_api_key(team_keys, spec, auth_token)
        except PlanError as exc:
            result["errors"].append(_plan_error_message(exc, team, spec))
            continue
        twin = _folded_twin(team_keys, spec["name"], plan.before) if token_dir is not None else None
        if twin is not None:
            result["errors"].append(
                "Team %r, key %r: the team's key %r (id %s) differs from it only in letter case, Unicode form or an "
                "invisible joiner or selector, so their token files would be one file on macOS and look alike "
                "elsewhere. Rename one of them first (declare it with its id and another name), or choose another "
                "name. Nothing was changed." % (team, spec["name"], twin["name"], twin["id"]))
            continue
        item = dict(spec)
        if token_dir is not None:
            item["token_path"] = "%s/%s%s" % (token_dir, spec["name"], TOKEN_SUFFIX)
        kinds = plan.action_names
        entry = files.get(spec["name"] + TOKEN_SUFFIX)
        problem = _token_file_problem(entry)
        if entry is None and plan.before is not None and plan.before.get("name") != spec["name"] \
                and not _token_file_problem(files.get("%s%s" % (plan.before.get("name"), TOKEN_SUFFIX))):
            # Renamed by id: the api_key task moves the old name's file (the record ties it to the key), but only
            # where nothing is (an empty file or a dangling symlink at the new name stays, so it counts as missing).
            problem = None
        if token_files is not None and plan.before is not None and spec["state"] == "present" and problem:
            result["missing_tokens"].append(spec["name"])
            if reissue_missing and not in_use(plan.before, auth_token):
                # Settings that differ are changed in the same task, before the rotation.
                result["rotated"].append(spec["name"])
                result["converge"].append(dict(item, state="regenerated", action="reissue"))
                continue
            if warn_missing:
                _warn("Team %r, key %r: the key exists but its token file %s %s, and the API shows a token "
                      "only once. Set team_api_keys_reissue_missing_tokens: true (or declare the key with state: "
                      "regenerated for one run) to issue a new token into the file."
                      % (team, spec["name"], item.get("token_path"), problem))
        limit = key.get("max_token_age_days")
        limit = max_token_age_days if limit is None else limit
        if limit not in (None, "") and plan.before is not None and spec["state"] == "present":
            result["token_age_limits"][plan.before["id"]] = int(limit)
            age = _token_age(issued.get(plan.before["id"]), now)
            if age is None:
                result["token_age_unknown"].append(spec["name"])
            elif age > int(limit) * DAY:
                rotate = not in_use(plan.before, auth_token)
                result["too_old"].append({"name": spec["name"], "token_age_days": int(age // DAY),
                                          "max_token_age_days": int(limit), "rotated": rotate})
                if rotate:
                    result["rotated"].append(spec["name"])
                    result["converge"].append(dict(item, state="regenerated", action="rotate"))
                    continue
        if not kinds:
            result["unchanged"].append(spec["name"])
            continue
        outcome = {"create": "created", "rotate": "rotated", "delete": "deleted"}
        action = next((kind for kind in ("create", "rotate", "delete") if kind in kinds), "update")
        result[outcome.get(action, "updated")].append(spec["name"])
        result["converge"].append(dict(item, action=action))
    if purge:
        # Folded: on macOS a declared "Deployer" and a purged "deployer" share one token file.
        wanted = set(_folded(key["name"]) for key in declared if isinstance(key.get("name"), str))
        matched = _matched_ids(team_keys, declared)
        for key in team_keys:
            if key["id"] in matched or in_use(key, auth_token):
                continue
            item = {"id": key["id"], "name": key["name"], "token_path": None}
            # A purged key's file is removed only when no declared key owns that file name, and no other key of
            # the team has a name that folds onto it (on macOS, one file), and the api_key action accepts its path.
            path = "%s/%s%s" % (token_dir, key["name"], TOKEN_SUFFIX) if token_dir is not None else None
            if path is not None and _folded(key["name"]) not in wanted and file_name_problem(key["name"], TOKEN_SUFFIX) \
                    is None and _folded_twin(team_keys, key["name"], key) is None and path_problem(path) is None:
                item["token_path"] = path
            result["purge"].append(item)
            result["deleted"].append(key["name"])
    return result


def _role_wide_maximum(value, filter_name):
    """The role-wide maximum token age in days, or None; refused before anything is rotated."""
    if value in (None, ""):
        return None
    try:
        return _days_option(value, "max_token_age_days")
    except AnsibleFilterError:
        raise AnsibleFilterError(
            "%s: max_token_age_days (team_api_keys_max_token_age_days) must be a whole number of days (0 or more) "
            "or null, got %r." % (filter_name, value))


def _token_age(issued, now):
    """Seconds since the token was issued, or None when unknown.

    An issue time more than a day ahead of ``now`` cannot be true (a tampered record or a wrong clock):
    it makes the age unknown rather than young, so that it cannot switch rotation off.
    """
    if issued is None or (issued - now).total_seconds() > DAY:
        return None
    return max(0.0, (now - issued).total_seconds())


def _warn(message):
    """An Ansible warning, shown under the task whose template called the filter (repeats are shown once)."""
    from ansible.utils.display import Display

    Display().warning(message)


def _matched_ids(team_keys, declared):
    """Ids of the keys that declarations manage: by id when one is given, else every key of that name."""
    matched = set()
    for key in declared:
        if key.get("id") is not None:
            matched.add(key["id"])
        else:
            matched.update(found["id"] for found in team_keys if found["name"] == key.get("name"))
    return matched


def _token_file_problem(entry):
    """Why a token file entry (token_dir's or find's) holds no token, or None when it may hold one."""
    if entry is None:
        return "does not exist"
    if entry.get("size") == 0:  # token_dir: a symlink's target's size; 0 when nowhere or not a regular file
        return "holds no token (it is empty, not a regular file, or a symlink that points nowhere)"
    return None


def _files_by_name(token_files):
    files = {}
    for entry in token_files or []:
        path = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(path, str):
            files[path.rsplit("/", 1)[-1]] = entry
    return files


def api_key_summary(plan, converged=None, purged=None, check_mode=False, team_keys=None, token_issued_at=None,
                    audit=False, now=None, unused_days=90, max_token_age_days=None, fail_on=None):
    """What a team's run did, from the api_key task results (not from the plan).

    ``converged`` and ``purged`` are the registered results of the converge and purge loops
    (``{"results": [...]}``); a task that did not run (skipped, or failed before it) reports nothing.
    With ``audit``, ``findings`` lists the api_key_audit findings of the team's keys as the run
    left them (``team_keys`` as read before the run, with each task's result applied), so a key
    rotated or deleted by the run no longer counts for what the run fixed; ``gate`` lists those of
    the findings named in ``fail_on``, one line per key.
    """
    summary = dict((outcome, []) for outcome in OUTCOMES)
    summary["failed"] = []
    touched = set()
    for result in _results(converged) + _results(purged):
        item = result.get("item") or {}
        name = item.get("name")
        touched.add(name)
        if result.get("failed"):
            summary["failed"].append(name)
            continue
        actions = result.get("actions") or []
        if "create" in actions:
            summary["created"].append(name)
        elif "rotate" in actions:
            summary["rotated"].append(name)
        elif "delete" in actions:
            summary["deleted"].append(name)
        elif "update" in actions:
            summary["updated"].append(name)
        elif not result.get("skipped"):
            summary["unchanged"].append(name)
    for name in (plan or {}).get("unchanged", []):
        if name not in touched:
            summary["unchanged"].append(name)
    # The plan says which too-old tokens it meant to rotate; the results say which were rotated.
    rotated = set(summary["rotated"])
    summary["too_old"] = [dict(entry, rotated=bool(entry.get("rotated")) and entry.get("name") in rotated)
                          for entry in (plan or {}).get("too_old", [])]
    summary["token_age_unknown"] = list((plan or {}).get("token_age_unknown", []))
    if audit:
        now = datetime.now(timezone.utc) if now in (None, "") else _parse_time(now, "api_key_summary: now")
        keys, issued = _after_run(team_keys or [], token_issued_at or {}, converged, purged, now)
        default = _role_wide_maximum(max_token_age_days, "api_key_summary")
        limits = (plan or {}).get("token_age_limits") or {}
        # token_too_old by each key's own limit, as the plan judged it, else the role-wide one.
        report = api_key_audit(keys, now=now, unused_days=unused_days, token_issued_at=issued)
        for entry in report:
            limit = limits.get(entry["id"], default)
            age = _token_age(_parse_time(issued[entry["id"]], "token_issued_at") if issued.get(entry["id"]) else None,
                             now)
            if limit is not None and age is not None and age > limit * DAY:
                entry["findings"] = [name for name in FINDINGS if name in entry["findings"] or name == "token_too_old"]
        summary["findings"] = [dict(id=entry["id"], name=entry["name"], findings=entry["findings"])
                               for entry in report if entry["findings"]]
        unknown = [name for name in fail_on or [] if name not in FINDINGS]
        if unknown:
            raise AnsibleFilterError("api_key_summary: fail_on names unknown findings %s; the findings are %s."
                                     % (", ".join(map(str, unknown)), ", ".join(FINDINGS)))
        summary["gate"] = ["key %r (%s): %s" % (entry["name"], entry["id"], ", ".join(
            finding for finding in entry["findings"] if finding in fail_on)) for entry in summary["findings"]
            if set(entry["findings"]) & set(fail_on or [])]
    if check_mode:
        summary["note"] = "check mode: a prediction of what a real run would do; nothing was changed"
    return summary


def _after_run(team_keys, token_issued_at, converged, purged, now):
    """The team's keys and token issue times as the run left them (predicted in check mode)."""
    keys = dict((key["id"], dict(key)) for key in team_keys)
    issued = dict(token_issued_at)
    for result in _results(converged) + _results(purged):
        if result.get("failed") or result.get("skipped"):
            continue
        item, actions, after = result.get("item") or {}, result.get("actions") or [], result.get("api_key") or {}
        if "delete" in actions:
            gone = item.get("id") or next((key_id for key_id, key in keys.items() if key.get("name") == item.get("name")),
                                          None)
            keys.pop(gone, None)
            continue
        if not after:
            continue
        key_id = after.get("id") or "(new) %s" % after.get("name")
        keys[key_id] = dict(after, id=key_id, created_at=after.get("created_at") or now.isoformat())
        if "create" in actions or "rotate" in actions:
            issued[key_id] = now.isoformat()
    return list(keys.values()), issued


def _results(registered):
    if not isinstance(registered, dict):
        return []
    return [result for result in registered.get("results") or [] if isinstance(result, dict)]


class FilterModule(object):
    def filters(self):
        return {
            "api_key_plan": api_key_plan,
            "api_key_spec_errors": api_key_spec_errors,
            "api_key_summary": api_key_summary,
        }
