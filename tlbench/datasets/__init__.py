"""Dataset adapters; importing this package registers the built-in datasets."""

from . import toy  # noqa: F401
