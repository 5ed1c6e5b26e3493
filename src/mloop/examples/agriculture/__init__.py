"""Precision agriculture: a seeded generator of fields, weather, soil sensors, image tiles and yields."""
