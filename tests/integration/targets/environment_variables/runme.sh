#!/usr/bin/env bash
# The connection settings taken from the environment, exported in the shell as users do.
# Tokens are never passed with the `environment:` task keyword, because Ansible prints a task's
# environment at -vvv; and this script does not use `set -x`, which would print them too.
set -eu

workdir="$(mktemp -d)"
cleanup() {
    if [ -f "${workdir}/pid" ]; then kill "$(cat "${workdir}/pid")" 2>/dev/null || true; fi
    rm -rf "${workdir}"
}
trap cleanup EXIT

python="${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}"
journal=()
config=../../integration_config.yml
real_url=""
fail_midway=false
if [ -f "${config}" ]; then
    # The journal path, and in real-API mode the URL; the token goes straight into a 0600 file.
    "${python}" - "${config}" "${workdir}" <<'PY' > "${workdir}/config"
import os
import sys

import yaml

with open(sys.argv[1]) as handle:
    config = yaml.safe_load(handle) or {}
if config.get("latitudesh_real_api_token"):
    path = os.path.join(sys.argv[2], "platform.token")
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write(config["latitudesh_real_api_token"])
print(config.get("latitudesh_sandbox_token_journal", ""))
print(str(config.get("latitudesh_real_api_url", "https://api.latitude.sh")).rstrip("/") if config.get("latitudesh_real_api_token") else "")
print("true" if config.get("latitudesh_real_api_fail_midway") else "false")
PY
    journal_path="$(sed -n 1p "${workdir}/config")"
    real_url="$(sed -n 2p "${workdir}/config")"
    fail_midway="$(sed -n 3p "${workdir}/config")"
    if [ -n "${journal_path}" ]; then journal=(--token-journal "${journal_path}"); fi
fi

if [ -n "${real_url}" ]; then
    # Real-API mode: no sandbox; one token, so one team; keys named ansible-test-<8 hex>-env-...
    url="${real_url}"
    prefix="ansible-test-$("${python}" -c 'import secrets; print(secrets.token_hex(4))')-"
    cp "${workdir}/platform.token" "${workdir}/data.token"
    mode=(-e latitudesh_real_api=true -e "latitudesh_key_prefix=${prefix}" -e "latitudesh_real_api_fail_midway=${fail_midway}")
    echo "real-API mode: ${url}; keys created here are named ${prefix}env-..."
    echo "skipped in real-API mode: environment_variables: the team behind each variable, told apart by its admin's email (the sandbox's seeded users)"
    echo "skipped in real-API mode: environment_variables: a second team's token in LATITUDESH_TOKEN (the same token is used)"
else
# Sandbox mode (this branch is left unindented: it holds a here-document).
mode=(-e latitudesh_real_api=false -e latitudesh_key_prefix=it-)
# --exit-when-idle: should this script be killed so that its trap cannot run, the sandbox stops by itself.
"${python}" ../../../sandbox/latitude_sandbox.py --port 0 --url-file "${workdir}/url" --pid-file "${workdir}/pid" \
    --exit-when-idle 600 ${journal[@]+"${journal[@]}"} > /dev/null &
for _ in $(seq 150); do
    if [ -s "${workdir}/url" ]; then break; fi
    sleep 0.1
done
url="$(cat "${workdir}/url")"

# Each team's admin token into a 0600 file, read back only inside the exports below.
"${python}" - "${url}" "${workdir}" <<'PY'
import json
import os
import sys
import urllib.request

url, workdir = sys.argv[1:]
with urllib.request.urlopen(url + "/_sandbox/state") as answer:
    for team in json.load(answer)["teams"]:
        path = os.path.join(workdir, team["name"] + ".token")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(team["admin_token"])
PY
fi

unset LATITUDESH_AUTH_TOKEN LATITUDESH_BEARER LATITUDESH_TOKEN LATITUDESH_API_URL
run() {
    ansible-playbook runme.yml -i "${INVENTORY_PATH}" -e "sandbox_url=${url}" "${mode[@]}" "$@"
}

for variable in LATITUDESH_AUTH_TOKEN LATITUDESH_BEARER LATITUDESH_TOKEN; do
    (
        export "${variable}=$(cat "${workdir}/platform.token")"
        run -e env_case=token -e "env_variable=${variable}" "$@"
    )
done

(
    LATITUDESH_API_URL="${url}"
    LATITUDESH_TOKEN="$(cat "${workdir}/data.token")"
    export LATITUDESH_API_URL LATITUDESH_TOKEN
    run -e env_case=url_and_token "$@"
)

(
    LATITUDESH_API_URL="${url}"
    LATITUDESH_AUTH_TOKEN="$(cat "${workdir}/platform.token")"
    export LATITUDESH_API_URL LATITUDESH_AUTH_TOKEN
    export LATITUDESH_BEARER=0123456789abcdef0123456789abcdef0bad
    run -e env_case=precedence "$@"
)
