#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: token_dir
short_description: Keep a directory of Latitude.sh token files private, and list its files and issue record
version_added: 0.2.0
description:
  - Works B(on the Ansible controller), in the collection's action plugin of the same name, where
    M(latitudesh.cloud.api_key) writes token files with its O(latitudesh.cloud.api_key#module:token_path) option.
    It sends no request to the API and runs no code on the managed host.
  - Creates the directory with mode C(0700) when it is missing, and sets an existing one to C(0700).
  - An existing directory is never taken away from others. It fails, changing nothing, when the directory is shared
    (sticky such as C(/tmp), setgid with group access, owned by another user, or C(/)), or holds anything besides
    token files (C(*.token) and the files its record lists), the collection's own C(.latitudesh*) files, a
    C(.gitignore) and team directories that hold the same, for example C(/etc).
  - Sets the token files named in O(secure_files) to mode C(0600). A token file that is a symlink is left alone
    and reported in RV(symlinks); M(latitudesh.cloud.api_key) replaces such a link when it writes the next token.
  - Lists the directory's C(*.token) files and returns the directory's issue record (C(.latitudesh-tokens.json)),
    which M(latitudesh.cloud.api_key) keeps.
  - Used by the P(latitudesh.cloud.team_api_keys#role) role once per team; one task instead of three modules.
author:
  - latitudesh.cloud developers (@latitudesh-cloud)
attributes:
  check_mode:
    description: Reports what it would change and changes nothing; a missing directory is reported, not created.
    support: full
  diff_mode:
    description: No diff.
    support: none
  idempotent:
    description: A second run changes nothing.
    support: full
options:
  path:
    description:
      - The token directory on the controller. A relative path is relative to the playbook's directory.
      - A path with a control character, a line separator, a bidirectional control or an invisible character
        (such as U+200B) is refused, as in
        O(latitudesh.cloud.api_key#module:token_path), because it would display as something it is not.
    type: path
    required: true
  secure_files:
    description:
      - Names of token files in O(path) (for example V(ci-deployer.token)) to set to mode C(0600) when they are
        regular files. Names that do not exist are ignored.
    type: list
    elements: str
    default: []
notes:
  - The action plugin does all the work on the controller; the module itself only fails, saying so, if a task
    runs it without the action plugin.
seealso:
  - module: latitudesh.cloud.api_key
"""

EXAMPLES = r"""
- name: Make the team's token directory private and fix its token files' modes
  latitudesh.cloud.token_dir:
    path: "{{ playbook_dir }}/credentials/platform"
    secure_files: [ci-deployer.token, monitoring.token]
  register: platform_tokens

- name: Show when each token was issued
  ansible.builtin.debug:
    msg: "{{ platform_tokens.tokens }}"
"""

RETURN = r"""
path:
  description: The absolute path of the directory.
  returned: always
  type: str
  sample: /home/ops/credentials/platform
files:
  description:
    - The directory's C(*.token) files, in the form of M(ansible.builtin.find)'s C(files), sorted by path.
    - Empty in check mode when the directory does not exist yet.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file's path.
      type: str
    mode:
      description: The file's mode as four octal digits (after the task; in check mode, as it is).
      type: str
      sample: "0600"
    islnk:
      description: Whether the file is a symlink.
      type: bool
    isreg:
      description: Whether the file is a regular file.
      type: bool
    size:
      description:
        - The size of the file in bytes. Unlike M(ansible.builtin.find), for a symlink this is the size of the file
          it points to; V(0) for a symlink that points nowhere and for anything that is not a regular file.
        - The C(latitudesh.cloud.team_api_keys) role counts a token file of size V(0) as missing.
      type: int
      version_added: 0.2.0
secured:
  description: The names from O(secure_files) whose mode was (or in check mode would be) set to C(0600).
  returned: always
  type: list
  elements: str
symlinks:
  description: The names from O(secure_files) that are symlinks, so their mode was not changed.
  returned: always
  type: list
  elements: str
tokens:
  description:
    - The issue record, per token file name, of the tokens that M(latitudesh.cloud.api_key) wrote here.
      V({}) when there is none.
  returned: always
  type: dict
  sample:
    ci-deployer.token:
      id: tok_x1ZJrdx5qg4LV
      name: ci-deployer
      token_last_slice: 4d063
      issued_at: "2026-12-06T05:00:00+00:00"
"""

from ansible.module_utils.basic import AnsibleModule

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    secure_files=dict(type="list", elements="str", default=[]),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg=(
        "latitudesh.cloud.token_dir works on the controller, in the collection's action plugin of the same "
        "name, which did not run for this task. Call it by its name latitudesh.cloud.token_dir."
    ))


if __name__ == "__main__":
    main()
