"""`python -m runners MODULE:ATTRIBUTE --queue NAME`: start a Runner."""

import sys

from .cli import main

sys.exit(main())
