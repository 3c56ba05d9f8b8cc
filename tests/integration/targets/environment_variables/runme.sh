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
if [ -f "${config}" ]; then
    journal_path="$("${python}" -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get("latitudesh_sandbox_token_journal", ""))' "${config}")"
    if [ -n "${journal_path}" ]; then journal=(--token-journal "${journal_path}"); fi
fi

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

unset LATITUDESH_AUTH_TOKEN LATITUDESH_BEARER LATITUDESH_TOKEN LATITUDESH_API_URL
run() {
    ansible-playbook runme.yml -i "${INVENTORY_PATH}" -e "sandbox_url=${url}" "$@"
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
