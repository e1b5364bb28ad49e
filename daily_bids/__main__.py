import sys

from daily_bids.quiet import quiet

# Before anything else is imported: the libraries' warnings and C++ logs are silenced unless asked for.
if "--verbose" not in sys.argv[1:]:
    quiet()

from daily_bids.cli import main  # noqa: E402  (after the output is set up)

sys.exit(main())
