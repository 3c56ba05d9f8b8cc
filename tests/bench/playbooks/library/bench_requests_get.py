# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench only: the least a module that lists the keys with ``requests`` does (no checks, no retries).

Its loop against the ping loop is the floor that any module built on ``requests`` starts from: the
``make bench`` report shows it beside the targets (docs/performance.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import requests

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(api_url=dict(type="str", required=True),
                                              auth_token=dict(type="str", required=True, no_log=True)))
    answer = requests.Session().get(module.params["api_url"] + "/auth/api_keys", timeout=30, headers={
        "Authorization": module.params["auth_token"], "Accept": "application/vnd.api+json"})
    module.exit_json(changed=False, status=answer.status_code, keys=len(json.loads(answer.content)["data"]))


if __name__ == "__main__":
    main()
