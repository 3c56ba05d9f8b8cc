#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: api_key
short_description: Create, update, rotate and delete Latitude.sh API keys
version_added: 0.1.0
description:
  - Makes a Latitude.sh API key of the token's team match what the task declares.
  - Reads the team's keys once, plans the changes, then sends only what differs
    (C(POST) to create, C(PATCH) to change settings, C(PUT) to rotate, C(DELETE) to remove).
  - The new token is shown by the API only once. With O(token_path), the task writes it to a file on the
    controller itself (atomically, mode C(0600)) and never returns it, so the task needs no C(no_log)
    and its diff stays visible. Without O(token_path), the token is returned in RV(token).
author:
  - latitudesh.cloud developers (@latitudesh-cloud)
extends_documentation_fragment:
  - latitudesh.cloud.api
  - latitudesh.cloud.api.ACTIONGROUP
attributes:
  check_mode:
    description: Sends no write request; reports the change a real run would make and the predicted RV(api_key).
    support: full
  diff_mode:
    description: Shows the key's O(name), O(read_only) and O(allowed_ips) before and after. Never a token.
    support: full
  idempotent:
    description:
      - With O(state=present) and O(state=absent), a second run changes nothing.
      - O(state=regenerated) rotates the token on every run, by design.
    support: partial
options:
  name:
    description:
      - The key's name. Identifies the key when O(id) is not given; names are not unique in the API,
        so when several keys have this name the task fails and lists their ids.
      - With O(id), the wanted name; the key is renamed if it differs.
      - Required to create a key.
    type: str
  id:
    description:
      - The key's id, for example V(tok_x1ZJrdx5qg4LV).
      - When given, the key is looked up by id only, and a missing id fails the task
        (unless O(state=absent)).
    type: str
  state:
    description:
      - V(present) creates the key if it is missing and changes its settings if they differ. It never rotates the token.
      - V(absent) deletes the key if it exists.
      - V(regenerated) rotates the key's token (creating the key if it is missing and O(name) is given),
        after changing its settings if they differ. The old token stops working at once.
    type: str
    choices: [present, absent, regenerated]
    default: present
  read_only:
    description:
      - Whether the key is read-only, limited to GET requests; left as it is when not given.
    type: bool
  allowed_ips:
    description:
      - IP addresses and CIDR networks the key may be used from. Left as it is when not given;
        V([]) removes the restriction.
      - Compared as a set of networks, so order does not matter and V(10.0.0.1) equals V(10.0.0.1/32).
    type: list
    elements: str
  force:
    description:
      - Allow rotating or deleting the very key that O(auth_token) is. Without it, such a task fails,
        because it would lock the token out of the API.
      - The key in use is recognised by its C(token_last_slice), the last five characters of O(auth_token).
    type: bool
    default: false
  token_path:
    description:
      - Where to write the new token B(on the Ansible controller) when the task creates or rotates the key.
        A relative path is relative to the playbook's directory; C(~) is expanded.
      - The file is written atomically (a temporary file in the same directory, flushed to disk, then
        renamed over the destination), with mode C(0600); missing parent directories are created with
        mode C(0700). A symlink at O(token_path) is replaced, never written through.
      - B(Before any write request), the destination is checked (no NUL, control characters, line separators,
        bidirectional controls or invisible characters such as U+200B, each path component at most 255 bytes,
        and its directory can be created and written (a probe file is written and removed)). If not, the
        task fails naming the path and the reason, and nothing is sent.
      - From the list request to the written file, the task holds an exclusive lock on the directory
        (the file C(.latitudesh.lock) in it), so two runs on one machine that write into the same directory
        cannot both create the same key. Each written token is recorded, with its key's id, name,
        C(token_last_slice) and the time it was issued, in C(.latitudesh-tokens.json) in the same directory.
      - If the token cannot be written after a create, the key is deleted again and the task fails saying
        nothing changed (or, when that delete fails too, naming the key's id and what to do). After a rotate,
        which cannot be undone, the task fails saying that the key was rotated and how to obtain a new token.
      - With O(state=absent), deleting the key removes its token file at O(token_path), unless the directory's record
        says that file holds another key's token (it is then kept, with a warning). When the key is already gone,
        the file is removed only if the record ties it to O(id).
      - With O(state=present), when the key's token file is elsewhere in the same directory (the directory's
        record ties another file to the key's id, under a name the key no longer has, as after renaming the key
        by O(id)), that file is moved to O(token_path) and the task reports RV(token_moved_from). A key that was not
        renamed keeps its file where it is, and a file whose recorded C(token_last_slice) is not the key's holds an
        old token (the key was rotated since) and is not moved. When the record ties the file at O(token_path)
        to another key (as after two keys swapped names by O(id)), the file is left as it is and a warning names
        both keys. A new token (create or rotate) is never written over such a file; the file is first moved to
        C(<name>.<other key's id>.token) (or, when that name is taken, the first free C(<name>.<other key's id>.<n>.token)),
        with a warning, so the other key's token is kept. When the task names a key other than the recorded one
        and that name would be over 255 bytes, the task fails before any request, naming the file and the fix.
      - A new token is never discarded while its directory is writable. When it cannot go to O(token_path) after a
        rotate (or after a create whose undo failed), because the file there cannot be set aside or the write failed,
        it is written to C(.latitudesh-rescued-<key id>.token) in the same directory (mode C(0600), recorded for its
        key) and the task fails, naming that file (also in RV(token_rescued_to)), the key and the cause. Free
        O(token_path), then run the task with O(state=present), which moves the rescued file to O(token_path).
      - With O(state=present), a key that exists while O(token_path) does not (and no file of it can be moved
        there) gets a warning (the API cannot show its token again), so rotate it with O(state=regenerated) to
        issue a new one into the file.
      - In check mode nothing is written or created; the destination is still checked, and a destination
        that a real run could not write fails the task.
      - The result then has RV(token_path) and no RV(token).
    type: path
    version_added: 0.2.0
  token_vault_password:
    description:
      - Encrypt the token file with Ansible Vault using this password; read it with C(ansible-vault view).
      - The token is encrypted in memory, so it is never on disk in plain text, not even for a moment.
      - Only with O(token_path).
    type: str
    version_added: 0.2.0
notes:
  - Without O(token_path), register the result with C(no_log=true) on every task that may return RV(token).
  - O(token_path) and O(token_vault_password) are handled on the controller by the collection's action plugin
    of the same name; the HTTP requests are sent by the module where the task runs.
  - Two runs on different machines can still both create a key of the same name, because the API has no
    idempotency key and the lock is local to one machine.
  - An interrupt (Ctrl-C) can lose at most the token of the one request in flight. Once the answer arrived,
    the file is written before the interrupt takes effect.
  - With E(ANSIBLE_DEBUG=1), ansible-core writes every module's raw output to the controller's debug output; a
    new token is then in it even with O(token_path). Do not debug runs that create or rotate keys this way.
  - A task C(timeout) (or E(ANSIBLE_TASK_TIMEOUT)) ends the task but not the module, so a token that the module
    receives afterwards would be lost. With O(state=present) or O(state=regenerated), outside check mode, a task
    whose timeout leaves less than (O(api_retries) + 3) x O(api_timeout) + 10 seconds fails before any request,
    saying how much to give. Values from the environment are read from the controller's and the task's
    C(environment); a remote host's own environment is not known there. A timeout that fires while a token file
    is being written takes effect once it is written, after a warning that says where the token is.
  - If a create or rotate request gets no usable answer, the module never sends it again; it checks
    what the API holds and tells you to run the task with O(state=regenerated) to obtain a token.
  - After a gateway error (HTTP 502, 503, 504), a timeout or a lost answer, the API may still apply the
    create or rotate later, so a list that does not show the new key yet proves nothing. The task then fails
    and tells you to wait and list the keys (M(latitudesh.cloud.api_key_info)) before you run it again.
seealso:
  - module: latitudesh.cloud.api_key_info
"""

EXAMPLES = r"""
- name: Make sure the CI key exists, limited to the CI network
  latitudesh.cloud.api_key:
    auth_token: "{{ vault_latitudesh_token }}"
    name: ci-deployer
    allowed_ips:
      - 10.20.0.0/24
  register: ci_key
  no_log: true

- name: Keep the new token (only set when the key was just created)
  ansible.builtin.copy:
    content: "{{ ci_key.token }}"
    dest: /etc/ci/latitudesh.token
    mode: "0600"
  when: ci_key.token is defined
  no_log: true

- name: Create the deploy key; the task itself writes its token on the controller (no no_log needed)
  latitudesh.cloud.api_key:
    name: deployer
    token_path: "{{ playbook_dir }}/credentials/deployer.token"
    token_vault_password: "{{ vault_token_files_password }}"

- name: Make the monitoring key read-only, all connection settings from module_defaults
  module_defaults:
    group/latitudesh.cloud.latitudesh:
      auth_token: "{{ vault_latitudesh_token }}"
  latitudesh.cloud.api_key:
    name: monitoring
    read_only: true

- name: Rename a key by id
  latitudesh.cloud.api_key:
    id: tok_x1ZJrdx5qg4LV
    name: ci-deployer-old

- name: Rotate the CI key's token
  latitudesh.cloud.api_key:
    name: ci-deployer
    state: regenerated
  register: rotated
  no_log: true

- name: Delete a key
  latitudesh.cloud.api_key:
    name: old-laptop
    state: absent
"""

RETURN = r"""
api_key:
  description:
    - The key after the task, or the predicted key in check mode. V({}) when the key does not exist.
    - Never contains the token; see RV(token).
  returned: always
  type: dict
  contains:
    id:
      description: The key's id. V(null) in check mode for a key that would be created.
      type: str
      sample: tok_x1ZJrdx5qg4LV
    name:
      description: The key's name.
      type: str
      sample: ci-deployer
    read_only:
      description: Whether the key is read-only (limited to GET requests).
      type: bool
      sample: false
    allowed_ips:
      description: IP addresses and CIDR networks the key may be used from; V([]) means any.
      type: list
      elements: str
      sample: ["10.20.0.0/24"]
    token_last_slice:
      description: The last five characters of the key's token.
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
      description: The user who owns the key (C(id), C(email)).
      type: dict
      sample: {"id": "user_Wel4PnEAmauQYZz3Vz83CkyV2BW", "email": "ops@example.com"}
token:
  description:
    - The key's new token. The API shows a token only once, so store it now.
  returned: when a key was created or rotated (not in check mode) and O(token_path) is not given
  type: str
  sample: 54ebfcfa2ad7f9fe0d4e081306554174d063
token_path:
  description:
    - The absolute path of the token file on the controller.
  returned: when O(token_path) is given
  type: str
  version_added: 0.2.0
  sample: /home/ops/credentials/deployer.token
token_written:
  description:
    - Whether this run wrote a new token to RV(token_path) (the key was created or rotated).
  returned: when O(token_path) is given
  type: bool
  version_added: 0.2.0
  sample: true
token_removed:
  description:
    - Whether this run removed the token file at RV(token_path) (the key is deleted or was already gone).
  returned: when O(token_path) is given and O(state=absent)
  type: bool
  version_added: 0.2.0
  sample: false
token_moved_from:
  description:
    - The token file that this run moved to RV(token_path) (in check mode, would move), because the directory's record
      ties it to the key (for example after the key was renamed).
  returned: when O(token_path) is given and a token file was moved
  type: str
  version_added: 0.2.0
  sample: /home/ops/credentials/old-name.token
token_rescued_to:
  description:
    - The file in the directory of O(token_path) that holds the new token, when it could not be written to
      O(token_path) (the task then fails and says why). Free O(token_path), then run the task with O(state=present),
      which moves this file there.
  returned: when a new token could not be written to O(token_path) and was written there instead
  type: str
  version_added: 0.2.0
  sample: /home/ops/credentials/.latitudesh-rescued-tok_2gyxz3MdAbQ9.token
deleted_id:
  description: The id of the key the task deleted (or, in check mode, would delete).
  returned: when the task deletes a key
  type: str
  sample: tok_x1ZJrdx5qg4LV
  version_added: 0.2.0
actions:
  description:
    - The requests that changed the key, in order; in check mode, the ones a real run would send.
    - V(create), V(update) (settings), V(rotate) and V(delete). V([]) when nothing changed.
  returned: always
  type: list
  elements: str
  sample: ["update", "rotate"]
  version_added: 0.2.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.latitudesh.cloud.plugins.module_utils._api import (
    LatitudeClient,
    LatitudeError,
    api_argument_spec,
)
from ansible_collections.latitudesh.cloud.plugins.module_utils._api_keys import (
    PlanError,
    apply_plan,
    list_api_keys,
    plan_api_key,
    validate_spec,
)


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(
        name=dict(type="str"),
        id=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent", "regenerated"]),
        read_only=dict(type="bool"),
        allowed_ips=dict(type="list", elements="str"),
        force=dict(type="bool", default=False),
        token_path=dict(type="path"),
        token_vault_password=dict(type="str", no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_one_of=[["id", "name"]], supports_check_mode=True)
    # A password in api_url (refused) must not be shown with the module's arguments at -vvv.
    module.no_log_values.update(LatitudeClient.url_secrets(module.params["api_url"]))
    spec = module.params
    if spec["token_path"] is not None or spec["token_vault_password"] is not None:
        # The action plugin of the same name handles both on the controller and never passes them on.
        module.fail_json(msg=(
            "token_path and token_vault_password are handled on the controller by the latitudesh.cloud.api_key "
            "action plugin, which did not run for this task; nothing was sent. Call the module by its name "
            "latitudesh.cloud.api_key, or leave both options out and store the returned token yourself with no_log: true."
        ))
    errors = validate_spec(spec)
    if errors:
        module.fail_json(msg=" ".join(errors))

    try:
        client = LatitudeClient(spec)
        keys = list_api_keys(client)
        plan = plan_api_key(keys, spec, spec["auth_token"])
        api_key, token = plan.after, None
        if plan.changed and not module.check_mode:
            api_key, token = apply_plan(client, plan, keys)
    except (LatitudeError, PlanError) as exc:
        module.fail_json(msg=str(exc), changed=getattr(exc, "changed", False))

    result = dict(changed=plan.changed, api_key=api_key or {}, actions=plan.action_names)
    if "delete" in plan.action_names:
        result["deleted_id"] = plan.before["id"]
    if module._diff:
        result["diff"] = plan.diff()
    if token:
        result["token"] = token
    module.exit_json(**result)


if __name__ == "__main__":
    main()
