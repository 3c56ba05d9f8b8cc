# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""TLS: a sandbox with a self-signed certificate is refused by default and reached with validate_certs=false."""

import os
import shutil
import socket
import subprocess

import pytest

from harness import Job, SandboxProcess, assert_no_traceback, assert_one_paragraph, build_play, job_result, run_jobs

pytestmark = pytest.mark.fault


@pytest.fixture(scope="module")
def tls_sandbox(artifacts, tmp_path_factory):
    openssl = shutil.which("openssl")
    if not openssl:
        # No silent skip: only an explicit LATITUDESH_ALLOW_MISSING=openssl turns this failure into a skip.
        if "openssl" not in os.environ.get("LATITUDESH_ALLOW_MISSING", "").split(","):
            pytest.fail("openssl is needed to make a self-signed certificate "
                        "(install openssl, or set LATITUDESH_ALLOW_MISSING=openssl to skip these tests)")
        pytest.skip("openssl is not installed (allowed by LATITUDESH_ALLOW_MISSING)")
    directory = tmp_path_factory.mktemp("tls")
    for name in ("cert", "other-ca"):
        # other-ca.pem is an unrelated certificate, used as a CA bundle that does not trust the sandbox.
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                        "-keyout", str(directory / ("%s.key" % name)), "-out", str(directory / ("%s.pem" % name))],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sandbox = SandboxProcess(artifacts, "tls", tls=(str(directory / "cert.pem"), str(directory / "cert.key")))
    sandbox.other_ca = str(directory / "other-ca.pem")
    assert sandbox.url.startswith("https://127.0.0.1:")
    yield sandbox
    sandbox.stop()


# Backoff before the 1st..4th retry is at least 0.5 + 1 + 2 + 4 s.
RETRIES = 4
# requests lets these variables override a session's verify=False; many CI images set them.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def runs(tls_sandbox, runner):
    """The same listing three ways, side by side, each in its own run."""
    token = tls_sandbox.admin_token()
    without_bundle = dict((name, None) for name in CA_BUNDLE_VARIABLES)
    with_bundle = dict((name, tls_sandbox.other_ca) for name in CA_BUNDLE_VARIABLES)

    def run(name, env, **args):
        task = {"name": "case", "latitudesh.cloud.api_key_info": args, "ignore_errors": True}
        return runner.run(build_play([task], api_url=tls_sandbox.url, api_retries=RETRIES), name,
                          extra_env=dict(env, LATITUDESH_AUTH_TOKEN=token))

    # A listener that never answers stands for a proxy: a connection to it stays in its accept queue.
    proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(8)
    through_proxy = dict(without_bundle, NO_PROXY=None, no_proxy=None, **dict(
        (name, "http://127.0.0.1:%d" % proxy.getsockname()[1]) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")))
    results = run_jobs([
        Job("default", run, "tls-default", without_bundle),
        Job("insecure", run, "tls-validate-certs-false", without_bundle, validate_certs=False),
        Job("insecure-with-ca-bundle-variables", run, "tls-validate-certs-false-ca-bundle-set", with_bundle,
            validate_certs=False),
        Job("insecure-with-proxy-variables", run, "tls-validate-certs-false-proxy-set", through_proxy,
            validate_certs=False),
    ])
    runs = dict((key, job_result(results, key)) for key in results)
    proxy.setblocking(False)
    try:
        runs["proxy connections"] = [proxy.accept()[1]]
    except BlockingIOError:
        runs["proxy connections"] = []
    proxy.close()
    return runs


def test_self_signed_certificate_is_refused_by_default(runs):
    run = runs["default"]
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    assert_one_paragraph(result, run)
    msg = result["result"]["msg"]
    assert "TLS verification failed" in msg and "validate_certs" in msg, msg


@pytest.mark.parametrize("variant", ["insecure", "insecure-with-ca-bundle-variables", "insecure-with-proxy-variables"])
def test_validate_certs_false_reaches_the_sandbox(variant, runs, tls_sandbox):
    """validate_certs=false works, also where REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, or HTTPS_PROXY is set."""
    run = runs[variant]
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "ok", run.describe()
    assert [key["name"] for key in result["result"]["api_keys"]] == ["admin", "ci-deployer", "monitoring"]


def test_a_loopback_https_url_never_goes_through_the_proxy(runs):
    """With validate_certs=false, a proxy that ended the TLS tunnel itself would read the admin token."""
    assert runs["insecure-with-proxy-variables"].task("case")["status"] == "ok"
    assert runs["proxy connections"] == []


def test_certificate_failure_is_not_retried(runs):
    """A verification failure is permanent: retrying it only adds backoff (at least 7.5 s for api_retries=4)."""
    result = runs["default"].task("case")
    assert result["status"] == "failed"
    assert result["duration"] < 6.0, (
        "the task took %.1f s with api_retries=%d: the certificate failure was retried" % (result["duration"], RETRIES))
