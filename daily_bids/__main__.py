import sys

from daily_bids.cli import main

sys.exit(main())
