"""One module per `ftk` command; each exposes `register(app)`."""
