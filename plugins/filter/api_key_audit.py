# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Audit filters: key age, idle time, token age and risky settings, from one list of a team's keys.

Pure: they import nothing that speaks HTTP. Documented in api_key_audit.yml
and api_key_token_ages.yml.

Boundary rule: "older than N days" means more than N * 86400 seconds, measured exactly; the
``*_days`` figures of an entry are whole days rounded down. A key idle for 90 days and one hour
shows ``idle_days: 90`` and is ``unused`` with ``unused_days=90``; one idle for exactly 90 days
is not. Timestamps without a UTC offset are taken as UTC; a timestamp in the future counts as
an age of 0.
"""

from datetime import datetime, timezone

from ansible.errors import AnsibleFilterError

# Stable order of the findings of one key.
FINDINGS = ("never_used", "unused", "unrestricted_write", "duplicate_name", "token_too_old")
DAY = 86400
MANIFEST_VERSION = 1


def _parse_time(value, where):
    """An aware UTC datetime from an ISO 8601 string (``Z``, ``+00:00``, any offset or naive) or a datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise AnsibleFilterError(
                "%s must be an ISO 8601 date and time such as 2026-01-14T15:56:29+00:00, got %r." % (where, value))
    else:
        raise AnsibleFilterError(
            "%s must be an ISO 8601 date and time such as 2026-01-14T15:56:29+00:00, got %r." % (where, value))
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _optional_time(value, where):
    return None if value is None else _parse_time(value, where)


def _iso(moment):
    return None if moment is None else moment.replace(microsecond=0).isoformat()


def _days_option(value, name, optional=False):
    """A whole number of days >= 0 (an int or a string of digits, as -e gives it); None when allowed."""
    if value is None and optional:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise AnsibleFilterError(
        "api_key_audit: %s must be a whole number of days (0 or more)%s, got %r." % (
            name, " or null" if optional else "", value))


def _elapsed(now, then):
    """Seconds from ``then`` to ``now``; 0 for a time in the future; None when ``then`` is unknown."""
    if then is None:
        return None
    return max(0.0, (now - then).total_seconds())


def _whole_days(seconds):
    return None if seconds is None else int(seconds // DAY)


def _older(seconds, days):
    return seconds is not None and seconds > days * DAY


def _key_list(api_keys, filter_name):
    if not isinstance(api_keys, list):
        raise AnsibleFilterError(
            "%s: its input must be the api_keys list that latitudesh.cloud.api_key_info returns, got %s."
            % (filter_name, type(api_keys).__name__))
    for index, key in enumerate(api_keys):
        if not isinstance(key, dict) or not isinstance(key.get("id"), str) or not key["id"]:
            raise AnsibleFilterError(
                "%s: api_keys[%d] must be a key as latitudesh.cloud.api_key_info returns it (a dict with an id)."
                % (filter_name, index))
    return api_keys


def _issue_times(token_issued_at):
    if token_issued_at is None:
        return {}
    if not isinstance(token_issued_at, dict):
        raise AnsibleFilterError(
            "api_key_audit: token_issued_at must be a dict of key id -> ISO 8601 issue time (or null), got %s."
            % type(token_issued_at).__name__)
    return dict(
        (key_id, _optional_time(value, "api_key_audit: token_issued_at[%r]" % key_id))
        for key_id, value in token_issued_at.items()
    )


def api_key_audit(api_keys, now=None, unused_days=90, max_token_age_days=None, token_issued_at=None):
    """One entry per key of ``api_keys`` (api_key_info's list), with its ages and findings."""
    _key_list(api_keys, "api_key_audit")
    now = datetime.now(timezone.utc) if now is None else _parse_time(now, "api_key_audit: now")
    unused_days = _days_option(unused_days, "unused_days")
    max_token_age_days = _days_option(max_token_age_days, "max_token_age_days", optional=True)
    issued = _issue_times(token_issued_at)

    names = [key.get("name") for key in api_keys]
    report = []
    for index, key in enumerate(api_keys):
        where = "api_key_audit: api_keys[%d] (%s)" % (index, key["id"])
        created = _optional_time(key.get("created_at"), where + ".created_at")
        last_used = _optional_time(key.get("last_used_at"), where + ".last_used_at")
        token_issued = issued.get(key["id"])
        age = _elapsed(now, created)
        idle = _elapsed(now, last_used) if last_used is not None else age
        token_age = _elapsed(now, token_issued)
        allowed_ips = list(key.get("allowed_ips") or [])
        read_only = bool(key.get("read_only"))

        found = set()
        if last_used is None and _older(age, unused_days):
            found.add("never_used")
        if last_used is not None and _older(idle, unused_days):
            found.add("unused")
        if not read_only and not allowed_ips:
            found.add("unrestricted_write")
        if key.get("name") is not None and names.count(key.get("name")) > 1:
            found.add("duplicate_name")
        if max_token_age_days is not None and _older(token_age, max_token_age_days):
            found.add("token_too_old")

        report.append({
            "id": key["id"],
            "name": key.get("name"),
            "read_only": read_only,
            "allowed_ips": allowed_ips,
            "created_at": _iso(created),
            "last_used_at": _iso(last_used),
            "token_issued_at": _iso(token_issued),
            "age_days": _whole_days(age),
            "idle_days": _whole_days(idle),
            "token_age_days": _whole_days(token_age),
            "findings": [finding for finding in FINDINGS if finding in found],
        })
    return report


def api_key_token_ages(manifest, api_keys):
    """``{key id: issued_at}`` from a token directory's manifest, for the keys whose token it still describes.

    An entry counts only when its ``token_last_slice`` equals the key's current one: otherwise the
    token was rotated elsewhere and its age is unknown. ``manifest`` may be None or {} (no manifest).
    """
    _key_list(api_keys, "api_key_token_ages")
    if manifest is None or manifest == {}:
        return {}
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION \
            or not isinstance(manifest.get("tokens"), dict):
        raise AnsibleFilterError(
            "api_key_token_ages: the manifest must be a dict with version %d and a tokens dict "
            "(the .latitudesh-tokens.json of a token directory); fix or remove that file." % MANIFEST_VERSION)
    slices = dict((key["id"], key.get("token_last_slice")) for key in api_keys)
    ages = {}
    for file_name, entry in sorted(manifest["tokens"].items()):
        where = "api_key_token_ages: manifest tokens[%r]" % file_name
        if not isinstance(entry, dict):
            raise AnsibleFilterError("%s must be a dict with id, token_last_slice and issued_at." % where)
        issued = _parse_time(entry.get("issued_at"), where + ".issued_at")
        key_id = entry.get("id")
        if not isinstance(key_id, str) or key_id not in slices or not entry.get("token_last_slice") or entry["token_last_slice"] != slices[key_id]:
            continue
        # Two files that describe the same current token: the later issue time wins.
        if key_id not in ages or issued > ages[key_id]:
            ages[key_id] = issued
    return dict((key_id, _iso(moment)) for key_id, moment in ages.items())


class FilterModule(object):
    def filters(self):
        return {"api_key_audit": api_key_audit, "api_key_token_ages": api_key_token_ages}
