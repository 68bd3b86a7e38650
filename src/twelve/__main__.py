"""`python -m twelve` is the `twelve` command."""
import sys

from twelve.cli import main

sys.exit(main())
