import sys

from proxyvote.cli.main import main

sys.exit(main())
