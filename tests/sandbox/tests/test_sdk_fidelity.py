# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The official Python SDK (latitudesh-python-sdk 3.4.6) against the sandbox.

Every sandbox answer must parse into the SDK's typed models. The SDK is a
test-only dependency (Python 3.10+): without it this module fails to import, unless
``LATITUDESH_ALLOW_MISSING`` names ``sdk``; then its tests are skipped and counted as skipped.
"""

import datetime
import os

import pytest

try:
    import httpx
    import latitudesh_python_sdk
    from latitudesh_python_sdk import Latitudesh, models
except ImportError:
    if "sdk" not in os.environ.get("LATITUDESH_ALLOW_MISSING", "").split(","):
        raise ImportError("latitudesh-python-sdk is not installed: pip install latitudesh-python-sdk==3.4.6, "
                          "or set LATITUDESH_ALLOW_MISSING=sdk to skip the fidelity tests")
    pytest.skip("latitudesh-python-sdk is not installed (allowed by LATITUDESH_ALLOW_MISSING)",
                allow_module_level=True)

SDK_VERSION = "3.4.6"


@pytest.fixture
def client(sandbox, control):
    """An SDK client authenticated as team ``platform``'s admin (proxies ignored)."""
    http = httpx.Client(trust_env=False)
    sdk = Latitudesh(bearer=control.admin_token("platform"), server_url=sandbox.url, client=http)
    yield sdk
    http.close()


def _create(client, **attributes):
    return client.api_keys.create(data={"type": "api_keys", "attributes": attributes})


def test_sdk_version():
    assert latitudesh_python_sdk.__version__ == SDK_VERSION


def test_list_parses_into_typed_models(client):
    result = client.api_keys.list()
    assert isinstance(result, models.APIKeys)
    assert [key.attributes.name for key in result.data] == ["admin", "ci-deployer", "monitoring"]
    for key in result.data:
        assert isinstance(key, models.APIKey) and key.type == models.Type.API_KEYS
        assert key.id.startswith("tok_") and key.attributes.token is None
        assert isinstance(key.attributes.created_at, datetime.datetime)
        assert key.attributes.created_at.utcoffset() == datetime.timedelta(0)
        assert key.attributes.api_version == "2023-06-01"
        assert key.attributes.user.id.startswith("user_")
    assert result.data[0].attributes.last_used_at is not None
    assert result.data[2].attributes.read_only is True


def test_create_regenerate_update_delete(client):
    created = _create(client, name="sdk", allowed_ips=["10.0.0.0/24"])
    assert isinstance(created, models.PostAPIKeyResponseBody)
    key_id, token = created.data.id, created.data.attributes.token
    assert len(token) == 36 and created.data.attributes.token_last_slice == token[-5:]
    assert created.data.attributes.allowed_ips == ["10.0.0.0/24"]
    assert created.data.attributes.last_used_at is None

    rotated = client.api_keys.regenerate(
        api_key_id=key_id, data={"type": "api_keys", "id": key_id, "attributes": {"name": "sdk-rotated"}})
    assert isinstance(rotated, models.RotateAPIKeyResponseBody)
    assert rotated.data.id == key_id and rotated.data.attributes.name == "sdk-rotated"
    assert rotated.data.attributes.token not in (None, token)

    updated = client.api_keys.update_api_key(
        api_key_id=key_id, data={"type": "api_keys", "attributes": {"name": "sdk-renamed", "allowed_ips": []}})
    assert isinstance(updated, models.UpdateAPIKeyResponseBody)
    assert updated.data.attributes.name == "sdk-renamed" and updated.data.attributes.token is None
    assert updated.data.attributes.allowed_ips is None

    assert client.api_keys.delete(api_key_id=key_id) is None
    with pytest.raises(models.APIError) as info:
        client.api_keys.delete(api_key_id=key_id)
    assert info.value.status_code == 404
    assert info.value.body == ('{"errors":[{"code":"not_found","status":"404","title":"Error",'
                               '"detail":"Specified Record Not Found","meta":{}}]}')


def test_create_sends_the_sdk_default_name(client):
    created = client.api_keys.create(data={"type": "api_keys", "attributes": {}})
    assert created.data.attributes.name == "Name of the API Key"


def test_new_token_works_with_the_sdk(sandbox, client):
    token = _create(client, name="second").data.attributes.token
    with httpx.Client(trust_env=False) as http:
        other = Latitudesh(bearer=token, server_url=sandbox.url, client=http)
        assert "second" in [key.attributes.name for key in other.api_keys.list().data]


@pytest.mark.parametrize("bearer, status", [("0" * 36, 401), (None, 403)])
def test_errors_raise_api_error(sandbox, control, bearer, status):
    token = bearer or next(key["token"] for key in control.state()["teams"][0]["keys"] if key["read_only"])
    with httpx.Client(trust_env=False) as http:
        sdk = Latitudesh(bearer=token, server_url=sandbox.url, client=http)
        with pytest.raises(models.APIError) as info:
            sdk.api_keys.create(data={"type": "api_keys", "attributes": {"name": "x"}})
    assert info.value.status_code == status


def test_blank_name_is_an_api_error(client):
    with pytest.raises(models.APIError) as info:
        _create(client, name=" ")
    assert info.value.status_code == 422 and "can't be blank" in info.value.body


def test_rate_limit_is_an_api_error(client, control):
    control.rate_limit(True, 60.0, retry_after_header=True)
    for index in range(20):
        _create(client, name="n%d" % index)
    with pytest.raises(models.APIError) as info:
        _create(client, name="over")
    assert info.value.status_code == 429 and info.value.headers["retry-after"].isdigit()
