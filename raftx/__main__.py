import sys

from raftx.cli import main

sys.exit(main())
