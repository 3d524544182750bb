"""The centinela command line."""
