"""`python -m t2demo <command>`: see t2demo.cli."""

import sys

from t2demo.cli import main

if __name__ == "__main__":
    sys.exit(main())
