import sys

from fmb.cli import main

sys.exit(main())
