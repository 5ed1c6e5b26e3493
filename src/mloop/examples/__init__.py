"""Case studies that ship with mloop: fraud detection (the default demo), more to come."""
