"""One module per client library: each installs a class-level hook and returns its undo."""
