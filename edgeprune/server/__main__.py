"""``python -m edgeprune.server``: run the server from EDGEPRUNE_* environment variables only.

Unlike ``edgeprune serve`` this never imports the rest of the CLI (and so never torch), which keeps the
container image small; see deploy/README.md.
"""

from __future__ import annotations

import sys

from edgeprune.errors import EdgepruneError
from edgeprune.server.app import serve_forever
from edgeprune.server.settings import ServerSettings


def main() -> int:
    try:
        serve_forever(ServerSettings.from_env())
    except EdgepruneError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
