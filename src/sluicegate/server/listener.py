"""Refusing new connections at the start of a drain while the open ones are still answered.

Granian stops accepting only when its worker is told to stop, and then it also closes every idle
kept-alive connection, so a client sending its next request on one at that moment sees a reset. The
gateway instead hands the stop to Granian only at the end of its drain, and shuts the listening socket
down itself at the start: new connections are refused (a load balancer tries another node), while a
request arriving on a kept-alive connection still reaches the app and gets a clear 503 with
`Connection: close`. The listening socket is found among this process's descriptors (it is shared by
every worker, so one shutdown stops them all; they are all draining anyway). Granian's accept loop then
retries on the shut socket until the worker stops: measured at about 15% of a core during the drain.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat


def stop_listening() -> int:
    """Shut down every listening TCP socket of this process; how many there were."""
    stopped = 0
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # not Linux: nothing to do, Granian's own stop refuses new connections later
        return 0
    for fd in fds:
        with contextlib.suppress(OSError):
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
            try:
                if sock.type == socket.SOCK_STREAM and sock.getsockopt(
                    socket.SOL_SOCKET, socket.SO_ACCEPTCONN
                ):
                    sock.shutdown(socket.SHUT_RDWR)
                    stopped += 1
            finally:
                sock.close()
    return stopped
