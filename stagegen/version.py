"""stagegen's version: the package's (pyproject.toml reads it from here) and the
one a generated module's docstring names, for information."""

VERSION = "0.1.0"
