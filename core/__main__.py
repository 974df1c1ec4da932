"""python -m core <command>: see core/cli/ (`python -m core --help` lists the commands)."""
import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main())
