"""One module per `birthlens` subcommand; each exposes register(subparsers).

    parser = subparsers.add_parser("train", formatter_class=HelpFormatter)
"""

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show ("(default: None)")."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)
