"""The shared base every package stands on: errors, clock, broker settings, config checks,
the service runner, the optional libraries and their extras. It imports nothing of the
project's own."""
