# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The retry policy: what is sent again, how long to wait first, and the cap on rate-limit waits.

Imported by ``_api.py`` only when a request is to be sent again or has failed: a run whose
requests succeed at once never compiles this file. Private to the collection.
"""

import time

# Retry rules. A 429 was refused, never applied, so every method may send it again.
# A 5xx or a dropped connection may hide an applied write: only the methods whose
# repetition cannot create a second effect are sent again.
RETRY_ON_SERVER_ERROR = frozenset(["GET", "PATCH", "DELETE"])
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
# The longest single wait the API may ask for that we honour (the documented limit window is 60 s).
MAX_ADVISED_WAIT = 120.0


def _wait_value(value):
    """``value`` as seconds to wait, or None when it is not a finite number >= 0."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if 0 <= seconds < float("inf") else None  # NaN compares false


def _date_wait(header):
    """Seconds until the HTTP-date ``header`` (0 when it is past), or None when it is no usable date.

    A year the platform cannot represent, or a zone offset of more than a day, is no date.
    """
    import email.utils  # only here: an HTTP-date Retry-After
    try:
        parsed = email.utils.parsedate_tz(header)
        if not parsed or (parsed[9] is not None and abs(parsed[9]) > 86400):
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def advised_wait(response):
    """Seconds the API asks us to wait: ``Retry-After`` first, then ``errors[].meta.retry_after`` (§5, §10.7).

    None when neither gives a usable value (negative, NaN, infinite or unparsable): the caller
    then backs off instead.
    """
    header = (response.headers.get("Retry-After") or "").strip()
    if header:
        seconds = _wait_value(header)
        if seconds is None and header[:3].isalpha() and header[:3].lower() not in ("nan", "inf"):
            seconds = _date_wait(header)
        if seconds is not None:
            return seconds
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError, RecursionError):  # RecursionError: JSON nested too deep
        errors = None
    for err in errors if isinstance(errors, list) else []:
        meta = err.get("meta") if isinstance(err, dict) else None
        value = meta.get("retry_after") if isinstance(meta, dict) else None
        if value is not None and not isinstance(value, bool):
            seconds = _wait_value(value)
            if seconds is not None:
                return seconds
    return None


def backoff(attempt, rand=None):
    """Jittered exponential backoff: between half and all of min(cap, base * 2**attempt)."""
    if rand is None:
        import random  # only here: a backoff
        rand = random.random
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt))
    return ceiling * (0.5 + rand() / 2)


class RetryPolicy(object):
    """Decides whether an attempt is sent again and how long to wait first.

    - 429: every method, after the advised wait (else the backoff); one wait at most
      ``MAX_ADVISED_WAIT`` s, and all the 429 waits of the task (of this client) together at most
      ``rate_limit_budget`` = ``api_retries * api_timeout / 2`` s.
    - 5xx, dropped connection, deadline: only GET, PATCH and DELETE (a POST or PUT may have been
      applied), after the backoff; a connect-phase failure (nothing sent): every method.
    - a refused certificate: never.
    Every request gets at most ``api_retries`` retries.
    """

    def __init__(self, retries, timeout):
        self.retries = retries
        self.rate_limit_budget = retries * timeout / 2.0
        self.rate_limit_waited = 0.0

    def after_failure(self, method, attempt, sent, certificate=False):
        """Seconds to wait before sending again after a 5xx or a transport failure, or None."""
        if attempt >= self.retries or certificate or (sent and method not in RETRY_ON_SERVER_ERROR):
            return None
        return backoff(attempt)

    def after_rate_limit(self, attempt, response):
        """``(seconds to wait, None)``, or ``(None, why not)`` for the 429 ``response``."""
        advised = advised_wait(response)
        if attempt >= self.retries:
            return None, " after api_retries=%s retries" % self.retries
        wait = backoff(attempt) if advised is None else advised
        if wait > MAX_ADVISED_WAIT:
            return None, ": the API asked to wait %.0f s, more than the %.0f s this module waits" % (
                wait, MAX_ADVISED_WAIT)
        left = self.rate_limit_budget - self.rate_limit_waited
        if wait > left:
            return None, (
                ": %s %.0f s, more than the %.1f s left of the %.1f s that a task waits for rate limits "
                "in all (api_retries x api_timeout / 2)"
                % ("the API asked to wait" if advised is not None else "the backoff would wait", wait,
                   max(left, 0.0), self.rate_limit_budget)
            )
        self.rate_limit_waited += wait
        return wait, None
