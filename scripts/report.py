"""The comparison-table command under its older name: ``scripts/report.py`` is ``scripts/tables.py``
(same flags, same files). See that script's help.

    python scripts/report.py results/runs --out results/local/report --plot
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "comparison tables of the runs")

import sys

from tables import main

if __name__ == "__main__":
    sys.exit(main())
