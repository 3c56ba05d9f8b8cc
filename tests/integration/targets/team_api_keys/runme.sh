#!/usr/bin/env bash
# This target has the name of the role it tests. Run as a role target, ansible-test's playbook
# would resolve that name to the collection's role latitudesh.cloud.team_api_keys and never run
# the tasks here, so this script runs them through runme.yml instead. ansible-test passes
# integration_config.yml only to role targets: pass it on here.
set -eux

export ANSIBLE_ROLES_PATH=..
config=../../integration_config.yml
extra_vars=()
if [ -f "${config}" ]; then
    extra_vars=(-e "@${config}")
fi
ansible-playbook runme.yml -i "${INVENTORY_PATH}" ${extra_vars[@]+"${extra_vars[@]}"} "$@"
