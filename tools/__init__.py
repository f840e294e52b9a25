"""Repository tools (not part of the installed ``condgen_helpers`` package)."""
