# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The collection's exceptions, in a file that imports nothing.

``_api.py`` (the HTTP client) raises them and ``_api_keys.py`` (the resource logic) handles
them; keeping them here lets the filter plugins use ``_api_keys.py`` without importing
the HTTP client (``_api.py``). Private to the collection: the names here may change without notice.
"""


class LatitudeError(Exception):
    """A failed API call, with a message that is safe to show (it never holds the token).

    ``maybe_applied`` is true when the request may have changed the API's state although no
    usable answer came back (a dropped connection, a read timeout, a 5xx or an unreadable
    success body after a write was sent).
    """

    def __init__(self, message, method=None, path=None, status=None, maybe_applied=False, pointer=None,
                 timed_out=False, final=False):
        super(LatitudeError, self).__init__(message)
        self.timed_out = timed_out
        self.final = final  # never sent again (the task's time budget is spent)
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.maybe_applied = maybe_applied
        self.pointer = pointer


class ConfigError(LatitudeError):
    """Bad connection options, found before any request is sent."""
