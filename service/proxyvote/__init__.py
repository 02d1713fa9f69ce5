"""proxyvote: applies an investor's voting policy to shareholder-meeting ballots."""

__version__ = "0.3.0"

# Bumped whenever a change to classification or evaluation may change a decision.
ENGINE_VERSION = f"proxyvote-engine/{__version__}"
