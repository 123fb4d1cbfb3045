"""The one exception type for problems a user can cause (bad file, box, checkpoint, stream)."""


class SiamcliError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with code 2.

    Messages name the file or value at fault and, where there is one, the fix.
    """
