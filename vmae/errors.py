"""The base of every error a user can fix (bad config, dataset file, annotation, download, video).

The command line prints these as one message, without a traceback, and exits with status 2.
"""


class UserError(Exception):
    """An error whose message names the file / field / value and what was expected."""
