# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment(object):
    """Connection options and attributes shared by every latitudesh.cloud module."""

    DOCUMENTATION = r"""
options:
  auth_token:
    description:
      - A Latitude.sh API token. The token decides the team; every request acts on that token's team.
      - If not set, the value of the E(LATITUDESH_AUTH_TOKEN), E(LATITUDESH_BEARER) or E(LATITUDESH_TOKEN)
        environment variable is used, in that order.
      - Sent as is in the C(Authorization) header, as the official SDKs do. It never appears in the
        module's output, diffs or error messages. A token with a line break, a control character or a
        non-ASCII character is refused before any request.
    type: str
    required: true
  api_url:
    description:
      - Base URL of the Latitude.sh API.
      - If not set, the value of the E(LATITUDESH_API_URL) environment variable is used.
      - Plain C(http://) is accepted only for loopback hosts (C(localhost), C(127.0.0.0/8), C(::1)) such as the
        bundled sandbox.
      - A loopback host (also spelt C(127.1) or C([::ffff:127.0.0.1])) never goes through a proxy, over C(http://) or
        C(https://), and must resolve to a loopback address.
      - An C(https://) URL to any other host goes through the proxy named by E(HTTPS_PROXY), else E(ALL_PROXY) (the
        lower-case names too), unless E(NO_PROXY) names the host (a name, a domain suffix, C(host:port), a CIDR block
        for an address, or C(*)).
      - Only an C(http://) proxy can be used. The TLS session with the API, and the token in it, travel inside the
        proxy's C(CONNECT) tunnel; credentials in the proxy URL are sent to the proxy only, and never shown. A SOCKS or
        C(https://) proxy is refused at once, before anything is sent, with a message naming the variable.
      - Refused before any request, with a message that does not repeat any password, are URLs with a user
        name or password (C(user:password@host)), a backslash, whitespace or control characters, a port outside
        1-65535, a query string or a fragment.
      - A non-ASCII host name is encoded with IDNA 2003 (Python's C(idna) codec). A name that this encoding would
        change (for example C(ß) to C(ss)) is refused; give such a host in its ASCII (C(xn--)) form.
    type: str
    default: https://api.latitude.sh
  api_timeout:
    description:
      - Seconds that each HTTP request may take, from connecting to the last byte of the answer. A slower
        answer (even one that keeps sending a byte now and then) is cut off, and counts as a timeout.
      - The 429 (rate limit) waits of one task together never exceed O(api_retries) x O(api_timeout) / 2
        seconds (75 s with the defaults); an advised wait that does not fit fails the task at once.
      - A whole task (its requests, their retries and all waits) ends within (O(api_retries) + 3) x O(api_timeout)
        seconds (4 minutes with the defaults). An attempt gets only what is left of that time, and a retry or wait
        that would not end within it is not made; the task then fails saying so.
      - At most 3600 (one hour).
      - If not set, the value of the E(LATITUDESH_API_TIMEOUT) environment variable is used.
    type: int
    default: 30
  api_retries:
    description:
      - How many times a request may be sent again after a rate limit (HTTP 429), a server error or a
        connection failure.
      - Rate-limited requests are retried for every method, after the wait the API asks for (at most 120 s each,
        within the total described under O(api_timeout)). A negative, infinite or unreadable wait is ignored in favour
        of a jittered exponential backoff.
        Server errors and dropped connections are retried only for GET, PATCH and DELETE;
        a create (POST) or rotate (PUT) is never sent twice.
      - If not set, the value of the E(LATITUDESH_API_RETRIES) environment variable is used.
    type: int
    default: 5
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate. Set to V(false) only for a test endpoint.
      - The certificate is checked against the CA bundle named by E(REQUESTS_CA_BUNDLE), else E(CURL_CA_BUNDLE) (a
        file, or a directory of hashed certificates), else the bundle of the C(certifi) Python package when it is
        installed, else the system's CA store.
      - V(false) verifies nothing, and wins over those variables.
    type: bool
    default: true
notes:
  - The modules speak HTTP with the Python standard library (C(http.client)) and need no Python package besides
    ansible-core.
  - Latitude.sh binds each token to one team. To manage several teams, run the task once per team
    with that team's token, or use the P(latitudesh.cloud.team_api_keys#role) role.
"""

    ACTIONGROUP = r"""
attributes:
  action_group:
    description: Use C(group/latitudesh.cloud.latitudesh) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - latitudesh.cloud.latitudesh
"""
