"""Who may call: the key directory, its store port, the admin operations on keys, and the gatekeeper's checks."""
