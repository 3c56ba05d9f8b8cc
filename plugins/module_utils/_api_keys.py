# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``api_keys`` resource: list, find, normalise, compare and plan.

Everything here but ``list_api_keys`` is pure: the modules and the ``api_key_changes``
filter share one definition of "what differs" and "what to send".
Private to the collection: the names here may change without notice.
"""

import ipaddress
import re

from ansible_collections.latitudesh.cloud.plugins.module_utils._errors import LatitudeError

PATH = "/auth/api_keys"
# §3: ids look like tok_x1ZJrdx5qg4LV; §10.10 treats the prefix as opaque.
ID_PATTERN = re.compile(r"^[A-Za-z]+_[A-Za-z0-9]+\Z")
NAME_MAX_LENGTH = 255
STATES = ("present", "absent", "regenerated")
SETTINGS = ("name", "read_only", "allowed_ips")
# Answers that usually come from a gateway in front of the API, not from the API (see _may_still_apply).
GATEWAY_ERRORS = frozenset([502, 503, 504])


class PlanError(Exception):
    """The wanted state cannot be reached from what the API holds; the message says why and what to do.

    ``changed`` is true when the API's state did (or may have) changed before the failure.
    ``reason`` names the kind of problem (``duplicate_name``, ``key_in_use``, ``missing_id``) for
    callers such as the role's planning filter that phrase their own advice; None otherwise.
    """

    def __init__(self, message, changed=False, reason=None, ids=()):
        super(PlanError, self).__init__(message)
        self.changed = changed
        self.reason = reason
        self.ids = list(ids)


def normalize_api_key(resource):
    """Flatten an API ``api_keys`` resource into the dict the modules return; never the token."""
    # An answer of another shape (a proxy, another API version) reads as missing values, never a crash.
    attrs = resource.get("attributes") if isinstance(resource.get("attributes"), dict) else {}
    user = attrs.get("user") if isinstance(attrs.get("user"), dict) else {}
    allowed_ips = attrs.get("allowed_ips") if isinstance(attrs.get("allowed_ips"), list) else []
    return {
        "id": resource.get("id"),
        "name": attrs.get("name"),
        # §3 and §9: read_only and allowed_ips may be null; null means "not restricted".
        "read_only": bool(attrs.get("read_only")),
        "allowed_ips": list(allowed_ips),
        "token_last_slice": attrs.get("token_last_slice"),
        "api_version": attrs.get("api_version"),
        "last_used_at": attrs.get("last_used_at"),
        "created_at": attrs.get("created_at"),
        "updated_at": attrs.get("updated_at"),
        "user": {"id": user.get("id"), "email": user.get("email")},
    }


def list_api_keys(client):
    """All keys of the token's team, normalised. §4: one GET, no pagination."""
    doc = client.get(PATH)
    data = doc.get("data")
    if not isinstance(data, list):
        raise PlanError("GET %s returned no list under 'data'; the API answer was not understood." % PATH)
    return [normalize_api_key(item) for item in data if isinstance(item, dict)]


def token_of(doc):
    """The one-time token in a create or rotate answer, or None."""
    data = doc.get("data") if isinstance(doc, dict) else None
    attrs = data.get("attributes") if isinstance(data, dict) else None
    return attrs.get("token") if isinstance(attrs, dict) else None


def network_set(values):
    """Normalise IPs and CIDRs into a set of networks: ``10.0.0.1`` equals ``10.0.0.1/32``."""
    return frozenset(str(ipaddress.ip_network(value.strip(), strict=False)) for value in values or [])


def validate_spec(spec):
    """Check one wanted key before any request; return a list of messages naming the option."""
    errors = []
    name, key_id = spec.get("name"), spec.get("id")
    if name is not None:
        if not name.strip():
            errors.append("name must not be blank: give the key's name, for example name=ci-deployer.")
        elif len(name) > NAME_MAX_LENGTH:
            errors.append("name is %d characters long; the limit is %d." % (len(name), NAME_MAX_LENGTH))
    if key_id is not None and not ID_PATTERN.match(key_id):
        errors.append(
            "id %r is not an API key id: ids look like tok_x1ZJrdx5qg4LV (letters, an underscore, "
            "then letters and digits)." % key_id
        )
    if key_id is None and name is None:
        errors.append("one of id or name is required to identify the key.")
    for value in spec.get("allowed_ips") or []:
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            errors.append(
                "allowed_ips entry %r is not an IP address or CIDR network (examples: 192.0.2.10, "
                "10.0.0.0/24, 2001:db8::/64)." % value
            )
    if spec.get("state", "present") not in STATES:
        errors.append("state must be one of %s, got %r." % (", ".join(STATES), spec.get("state")))
    return errors


def find_api_key(keys, key_id=None, name=None):
    """The key with ``key_id`` (when given) else the single key called ``name``; None when missing."""
    if key_id is not None:
        return next((key for key in keys if key["id"] == key_id), None)
    matches = [key for key in keys if key["name"] == name]
    if len(matches) > 1:
        raise PlanError(
            "%d API keys are named %r (ids: %s), so the name does not tell which one to manage. "
            "Give id to choose one; nothing was changed."
            % (len(matches), name, ", ".join(key["id"] for key in matches)),
            reason="duplicate_name", ids=[key["id"] for key in matches],
        )
    return matches[0] if matches else None


def setting_changes(current, spec):
    """The settings to PATCH so that ``current`` matches what ``spec`` asks for; only given options count."""
    changes = {}
    if spec.get("id") is not None and spec.get("name") is not None and spec["name"] != current["name"]:
        changes["name"] = spec["name"]
    if spec.get("read_only") is not None and bool(spec["read_only"]) != current["read_only"]:
        changes["read_only"] = bool(spec["read_only"])
    wanted_ips = spec.get("allowed_ips")
    if wanted_ips is not None and not _same_networks(wanted_ips, current["allowed_ips"]):
        changes["allowed_ips"] = [value.strip() for value in wanted_ips]
    return changes


def _same_networks(wanted, current):
    """True when both lists name the same networks; False when the API holds a value that is no network."""
    try:
        return network_set(wanted) == network_set(current)
    except (ValueError, TypeError, AttributeError):
        return False


def in_use(key, auth_token):
    """True when ``auth_token`` is this key's token: its last characters match ``token_last_slice``."""
    tail = key.get("token_last_slice")
    return bool(tail and auth_token and auth_token.strip().endswith(tail))


class Plan(object):
    """What to send to get from ``before`` (a normalised key or None) to the wanted state.

    ``actions`` is an ordered list of ``("create"|"update"|"rotate"|"delete", attributes)``;
    ``after`` is the predicted key (``None`` when it will not exist).
    """

    def __init__(self, before, actions, after):
        self.before = before
        self.actions = actions
        self.after = after

    @property
    def changed(self):
        return bool(self.actions)

    @property
    def action_names(self):
        """The kinds of request the plan sends, in order: ``create``, ``update``, ``rotate``, ``delete``."""
        return [action for action, _attributes in self.actions]

    def diff(self):
        return {"before": _diff_view(self.before), "after": _diff_view(self.after)}


def _diff_view(key):
    if key is None:
        return {}
    return {"name": key["name"], "read_only": key["read_only"], "allowed_ips": sorted(key["allowed_ips"])}


def plan_api_key(keys, spec, auth_token=None):
    """Plan one key. ``spec`` holds id, name, state, read_only, allowed_ips and force."""
    state = spec.get("state") or "present"
    key_id, name = spec.get("id"), spec.get("name")
    current = find_api_key(keys, key_id, name)

    if current is None:
        if state == "absent":
            return Plan(None, [], None)
        if key_id is not None:
            raise PlanError(
                "No API key with id %s exists in this token's team, so it cannot be %s. To create "
                "a new key, give name without id." % (key_id, "updated" if state == "present" else "rotated"),
                reason="missing_id", ids=[key_id],
            )
        attributes = {"name": name}
        for option in ("read_only", "allowed_ips"):
            if spec.get(option) is not None:
                attributes[option] = spec[option] if option == "read_only" else [v.strip() for v in spec[option]]
        after = {
            "id": None, "name": name, "read_only": bool(spec.get("read_only")),
            "allowed_ips": list(attributes.get("allowed_ips", [])), "token_last_slice": None,
            "api_version": None, "last_used_at": None, "created_at": None, "updated_at": None,
            "user": {"id": None, "email": None},
        }
        return Plan(None, [("create", attributes)], after)

    if state != "present" and in_use(current, auth_token) and not spec.get("force"):
        verb = "delete" if state == "absent" else "rotate"
        raise PlanError(
            "The API key %s (%s) is the key that auth_token belongs to: to %s it would lock this "
            "token out of the API (and any later task that uses it). Use another team admin token, "
            "or set force=true if that is what you want." % (current["id"], current["name"], verb),
            reason="key_in_use", ids=[current["id"]],
        )

    if state == "absent":
        return Plan(current, [("delete", {})], None)

    actions = []
    after = dict(current, user=dict(current["user"]))
    changes = setting_changes(current, spec)
    if changes:
        actions.append(("update", changes))
        after.update(changes)
    if state == "regenerated":
        actions.append(("rotate", {"name": after["name"]}))
        after["token_last_slice"] = None
    return Plan(current, actions, after)


def resource_body(attributes, key_id=None):
    """A JSON:API request document (§2) for POST, PUT or PATCH."""
    data = {"type": "api_keys", "attributes": attributes}
    if key_id is not None:
        data["id"] = key_id
    return {"data": data}


def item_path(key_id):
    """The path of one key. The id comes from the API: quoted, it stays one path segment (no ``/``, ``?``, ``#``);
    an id that quoting cannot keep to one key (empty, ``.``, ``..``, which are dot segments) is refused."""
    from urllib.parse import quote  # only here: a request on one key
    if key_id in (None, "", ".", ".."):
        raise PlanError("The API listed a key whose id, %r, cannot name one key in a URL (a request on it would go "
                        "to another path). Nothing was sent for it: give the key to change by another id, or report "
                        "the answer to Latitude.sh." % key_id)
    return "%s/%s" % (PATH, quote(str(key_id), safe=""))


def apply_plan(client, plan, keys):
    """Send the plan's requests in order; return ``(api_key, token)``.

    ``keys`` is the list the plan was made from: after an ambiguous create it tells an old key
    from the one this run may have made. Raises LatitudeError or PlanError with a message that
    says what happened and what to run next; POST and PUT are never sent twice.
    """
    key, token = plan.before, None
    for done, (action, attributes) in enumerate(plan.actions):
        try:
            key, token = _apply_one(client, action, attributes, key, token, keys)
        except (LatitudeError, PlanError) as exc:
            # An earlier action was applied, or this one may have been: the task changed something.
            exc.changed = bool(done or getattr(exc, "changed", False) or getattr(exc, "maybe_applied", False))
            raise
    return key, token


def _apply_one(client, action, attributes, key, token, keys):
    if action == "create":
        return _create(client, attributes, keys)
    if action == "update":
        doc = client.patch(item_path(key["id"]), resource_body(attributes, key["id"]))
        # An empty 200 still means applied: fall back to the predicted settings.
        data = doc.get("data")
        return (normalize_api_key(data) if isinstance(data, dict) and data else dict(key, **attributes)), token
    if action == "rotate":
        return _rotate(client, key, attributes)
    client.delete(item_path(key["id"]))
    return None, token


def _create(client, attributes, keys):
    try:
        doc = client.post(PATH, resource_body(attributes))
    except LatitudeError as exc:
        if not exc.maybe_applied:
            raise
        message, created = _after_lost_create(client, attributes["name"], keys, exc)
        raise PlanError(message, changed=created)
    token = token_of(doc)
    if not token or not isinstance(doc.get("data"), dict):
        raise PlanError(
            "POST %s answered without the new key's token: the key %r was created but its token "
            "cannot be shown. Run the task again with state=regenerated to get a new token."
            % (PATH, attributes["name"]),
            changed=True,
        )
    return normalize_api_key(doc["data"]), token


def _after_lost_create(client, name, keys, exc):
    """Look once more after a create whose answer was lost; return ``(message, maybe_created)``."""
    known = set(key["id"] for key in keys)
    failure = str(exc).rstrip(".")
    try:
        fresh = [key for key in list_api_keys(client) if key["name"] == name and key["id"] not in known]
    except (LatitudeError, PlanError) as again:
        message = (
            "%s. Checking whether the key %r was created failed too (%s): list the keys "
            "(latitudesh.cloud.api_key_info) before running this task again, so that no duplicate "
            "is made." % (failure, name, again)
        )
        return message, True
    if fresh:
        message = (
            "%s. The key %r was created (id %s) but its token was not received and cannot be "
            "read again. Run the task again with state=regenerated (and id=%s) to obtain a token; "
            "no second key was created." % (failure, name, fresh[0]["id"], fresh[0]["id"])
        )
        return message, True
    if _may_still_apply(exc):
        message = (
            "%s. No key named %r is listed yet, but that does not prove that the create failed: the API may "
            "still apply the request (a gateway that answered may pass it on later, or the API may still be "
            "processing it). Do not run the task again at once: wait a few minutes, then list the keys "
            "(latitudesh.cloud.api_key_info). If a key named %r is there, it is the one this task created and "
            "its token was never received: run the task with its id and state=regenerated to obtain a token. "
            "If none is there, run the task again. If two keys named %r exist afterwards, delete by id "
            "(state=absent) the one whose token you do not hold (with token_path: the one without a token "
            "file)." % (failure, name, name, name)
        )
        return message, True
    # The API itself gave its final answer (a 500, or an unreadable success): what it lists now is what it holds.
    message = "%s. No key named %r exists now, so nothing was created; it is safe to run the task again." % (failure, name)
    return message, False


def _may_still_apply(exc):
    """True when a write that failed with ``exc`` may still be applied by the API after the failure.

    The contract declares only generic 4XX/5XX answers for /auth/api_keys (§5, "Status codes for
    api-key operations") and no idempotency keys (§6). A 502, 503 or 504 usually comes from a
    gateway in front of the API, which may pass the request on after it answered; a timeout or a
    lost answer (no status) says nothing about when the API applies it. Only an answer the API
    gave itself (a 500, an unreadable 2xx) ends the request, so that a list made after it is final.
    """
    return exc.status is None or exc.status in GATEWAY_ERRORS


def _rotate(client, key, attributes):
    try:
        doc = client.put(item_path(key["id"]), resource_body(attributes, key["id"]))
    except LatitudeError as exc:
        if not exc.maybe_applied:
            raise
        message = (
            "%s. The key %s (%s) may have been rotated: its old token may already be invalid and the "
            "new one was not received. " % (str(exc).rstrip("."), key["id"], key["name"])
        )
        if _may_still_apply(exc):
            message += (
                "The API may also still apply this request later, which would make the token of a rotation "
                "sent before that invalid: wait a few minutes, then run the task again with state=regenerated "
                "to obtain a working token, and check with latitudesh.cloud.api_key_info that the key's "
                "token_last_slice is the end of that token."
            )
        else:
            message += "Run the task again with state=regenerated to obtain a working token."
        raise PlanError(message, changed=True)
    token = token_of(doc)
    if not token:
        raise PlanError(
            "PUT %s answered without a token: the key %s may have been rotated and its new token "
            "cannot be shown. Run the task again with state=regenerated." % (item_path(key["id"]), key["id"]),
            changed=True,
        )
    return normalize_api_key(doc["data"]), token
