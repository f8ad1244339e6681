"""quotatool: find out where mailbox storage went, and safely get it back."""

__version__ = "0.1.0"
