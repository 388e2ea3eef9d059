"""The whole lifecycle on the fraud example: the same as ``forgeline demo`` (``make demo``).

generate → train → serve → drifting traffic → monitor → labels → retrain → promote →
the server switches → a summary. Options as for ``forgeline demo --help``:

    python examples/demo.py --home /tmp/demo --requests 2000
"""

from __future__ import annotations

import sys

from forgeline.cli import main

if __name__ == "__main__":
    main(["demo", *sys.argv[1:]])
