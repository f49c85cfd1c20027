"""Healthcheck of a workshop Mesos agent; runs inside the agent image (see docker-compose.yml).

Healthy means: this agent answers ``GET /health`` with 200 on its own port (``MESOS_PORT``),
and pymesos imports, since every executor the workshop launches here needs it.
"""

import os
import socket
import sys
import urllib.request

import pymesos  # noqa: F401  (an agent that cannot run our executors is not healthy)


def main() -> int:
    url = f"http://{socket.gethostname()}:{os.environ.get('MESOS_PORT', '5051')}/health"
    # No proxies: Docker Desktop may hand its proxy settings to every container.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
