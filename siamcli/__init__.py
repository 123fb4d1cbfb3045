"""siamcli: real-time single-object visual tracking (SiamRPN, SiamRPN++, SiamBAN, NanoTrack)."""

__version__ = "0.1.0"
