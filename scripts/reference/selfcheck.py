#!/usr/bin/env python3
"""Same as `python3 -m gflref.selfcheck`, runnable from anywhere."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gflref.selfcheck import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
