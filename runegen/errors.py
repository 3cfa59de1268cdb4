"""One exception type for bad user input: the CLI turns it into one line on stderr and exit 2."""


class UsageError(Exception):
    """Input the user can fix (a missing file, a bad flag value, an unwritable folder)."""
