"""Everything that speaks Redis: key layout, connections, registrations, streams."""
