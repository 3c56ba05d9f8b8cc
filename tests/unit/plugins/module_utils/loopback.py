# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The test servers' common part: a listener on 127.0.0.1 that hands each connection to a thread of its own."""

from __future__ import absolute_import, division, print_function

import socket
import threading


class Listener(object):
    """A TCP listener on 127.0.0.1 (a free port, ``port``); ``handle(conn)`` serves each connection in its own thread.

    A subclass sets its own attributes before calling ``Listener.__init__``: connections are accepted from then on.
    """

    def __init__(self, backlog=16):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(backlog)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept)
        self.thread.daemon = True
        self.thread.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _addr = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # closed by close()
            thread = threading.Thread(target=self.handle, args=(conn,))
            thread.daemon = True
            thread.start()

    def handle(self, conn):
        raise NotImplementedError

    def close(self):
        self.stop.set()
        self.listener.close()
        self.thread.join(5)
