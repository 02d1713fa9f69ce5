"""The command line (`proxyvote ...`): an edge that loads files, converts them once, and calls the app."""

import sys
import types

# `import cel` (the CEL runtime) also imports cel's own interactive shell, and with it
# prompt_toolkit and rich: about a fifth of the server's start-up, for nothing any
# command here uses. A placeholder for that one submodule keeps it out.
sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))

from proxyvote.cli.main import main  # noqa: E402

__all__ = ["main"]
