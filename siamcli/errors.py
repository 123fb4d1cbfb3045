"""The one exception type for problems a user can cause (bad file, box, checkpoint, stream)."""


class SiamcliError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with code 2.

    Messages name the file or value at fault and, where there is one, the fix.
    """


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
