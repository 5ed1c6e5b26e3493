"""The mloop command line (Typer + Rich). Thin: parse, call the service layer, format."""
