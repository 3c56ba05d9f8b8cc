#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: api_key_info
short_description: List Latitude.sh API keys
version_added: 0.1.0
description:
  - Lists the API keys of the team that O(auth_token) belongs to, optionally filtered by O(id) or O(name).
  - Makes exactly one request (C(GET /auth/api_keys)); the API never returns tokens in a list, and
    neither does this module.
author:
  - latitudesh.cloud developers (@latitudesh-cloud)
extends_documentation_fragment:
  - latitudesh.cloud.api
  - latitudesh.cloud.api.ACTIONGROUP
attributes:
  check_mode:
    description: The module only reads, so it runs normally in check mode.
    support: full
  diff_mode:
    description: The module changes nothing, so it has no diff.
    support: N/A
  idempotent:
    description: Reading changes nothing.
    support: full
options:
  id:
    description:
      - Return only the key with this id, for example V(tok_x1ZJrdx5qg4LV).
    type: str
  name:
    description:
      - Return only the keys with this exact name. Names are not unique, so several keys may match.
    type: str
seealso:
  - module: latitudesh.cloud.api_key
"""

EXAMPLES = r"""
- name: List every API key of the team
  latitudesh.cloud.api_key_info:
    auth_token: "{{ vault_latitudesh_token }}"
  register: keys

- name: Show the key names
  ansible.builtin.debug:
    msg: "{{ keys.api_keys | map(attribute='name') | list }}"

- name: Look up one key by name, with the token taken from LATITUDESH_AUTH_TOKEN
  latitudesh.cloud.api_key_info:
    name: ci-deployer
  register: ci_key
"""

RETURN = r"""
api_keys:
  description: The matching API keys, in the order the API lists them. Never contains a token.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The key's id.
      type: str
      sample: tok_x1ZJrdx5qg4LV
    name:
      description: The key's name.
      type: str
      sample: ci-deployer
    read_only:
      description: Whether the key is read-only (limited to GET requests); an unset value is returned as V(false).
      type: bool
      sample: false
    allowed_ips:
      description: IP addresses and CIDR networks the key may be used from, as the API stores them; V([]) means any.
      type: list
      elements: str
      sample: ["10.0.0.0/24"]
    token_last_slice:
      description: The last five characters of the key's token, to recognise it.
      type: str
      sample: 4d063
    api_version:
      description: The API version the key was made for.
      type: str
      sample: "2023-06-01"
    last_used_at:
      description: When the key was last used, or V(null).
      type: str
      sample: "2026-01-14T15:56:29+00:00"
    created_at:
      description: When the key was created.
      type: str
      sample: "2026-01-14T15:56:29+00:00"
    updated_at:
      description: When the key was last changed.
      type: str
      sample: "2026-01-14T15:56:29+00:00"
    user:
      description: The user who owns the key.
      type: dict
      contains:
        id:
          description: The user's id.
          type: str
          sample: user_Wel4PnEAmauQYZz3Vz83CkyV2BW
        email:
          description: The user's e-mail address.
          type: str
          sample: ops@example.com
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.latitudesh.cloud.plugins.module_utils._api import (
    LatitudeClient,
    LatitudeError,
    api_argument_spec,
)
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_keys import PlanError, list_api_keys


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(id=dict(type="str"), name=dict(type="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    # A password in api_url (refused) must not be shown with the module's arguments at -vvv.
    module.no_log_values.update(LatitudeClient.url_secrets(module.params["api_url"]))
    try:
        keys = list_api_keys(LatitudeClient(module.params))
    except (LatitudeError, PlanError) as exc:
        module.fail_json(msg=str(exc))
    wanted_id, wanted_name = module.params["id"], module.params["name"]
    keys = [
        key for key in keys
        if (wanted_id is None or key["id"] == wanted_id) and (wanted_name is None or key["name"] == wanted_name)
    ]
    module.exit_json(changed=False, api_keys=keys)


if __name__ == "__main__":
    main()
