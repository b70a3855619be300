"""Entry point of the self-contained build (`make dist`): what the `navigator` console
script runs."""

import sys

from navigator.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
