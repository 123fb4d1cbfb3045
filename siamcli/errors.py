"""The one exception type for problems a user can cause (bad file, box, checkpoint, stream), and
how its messages quote what the user gave."""


class SiamcliError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with code 2.

    Messages name the file or value at fault and, where there is one, the fix.
    """


#: the most characters of a user's value a message repeats: a box file of one 50 MB line, or a
#: setting pasted by mistake, is named by its start and its length, never echoed whole
QUOTE_LIMIT = 60


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as a message quotes it: its ``repr``, cut after ``limit`` characters with its
    length said (``'1,2,3,4,5,...'... (52428800 characters)``)."""
    if isinstance(value, (str, bytes)):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} {'characters' if isinstance(value, str) else 'bytes'})"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


#: what to do when the cv2 module is missing: OpenCV comes through one of two extras, as its
#: headless and GUI builds install the same module and must not be installed together
OPENCV_MISSING = ("OpenCV is not installed: pip install 'siamcli[headless]' (no windows, for servers) or "
                  "'siamcli[gui]' (windows to draw the first box and for webcam, and the CSRT/KCF baselines)")


#: how a checkpoint is passed, on the command line and from Python
WEIGHTS_OPTION = "--weights FILE"
WEIGHTS_ARGUMENT = "weights=FILE"


class NeedsWeights(SiamcliError):
    """A checkpoint is missing or unusable, and the fix is to pass one. The message names the way
    to pass it as the command line spells it (:data:`WEIGHTS_OPTION`); :meth:`worded` gives it in
    the words of another caller, such as the Python API's :data:`WEIGHTS_ARGUMENT`."""

    def worded(self, how: str) -> str:
        return str(self).replace(WEIGHTS_OPTION, how)
