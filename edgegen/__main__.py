"""python -m edgegen: the same as the edgegen command."""

import sys

from edgegen.cli import main

sys.exit(main())
