"""The history trimmer: a route's oldest turns dropped or summarised to keep a prompt within a token budget."""
