"""One module of routes per API area; each parses, calls the project's services, answers."""
