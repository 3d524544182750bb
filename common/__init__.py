"""The shared base every package stands on: errors, clock, broker settings, config checks,
the service runner. It imports nothing of the project's own."""
