"""Device drivers: keypad, NFC, zones and siren, climate, camera, and their simulated twins."""
