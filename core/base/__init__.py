"""The base every layer stands on: typed errors, the run store, the machine's description, shared constants."""
