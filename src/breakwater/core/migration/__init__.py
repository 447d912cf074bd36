"""Configurations of other gateways converted to Breakwater's (``breakwater import``).

Each converter is a pure function from the other gateway's parsed file to a Breakwater config
mapping and the list of what it could not carry over; reading and writing files is the CLI's.
"""
