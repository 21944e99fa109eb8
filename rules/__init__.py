"""The default rule pack: YAML data, one rule per file, shipped inside the package."""
