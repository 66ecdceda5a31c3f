"""One module per `birthlens` subcommand; each exposes register(subparsers)."""
