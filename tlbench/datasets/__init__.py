"""Dataset adapters; importing this package registers the built-in datasets."""

from . import amazon, catsdogs, coil, digits, office_caltech, relational, toy  # noqa: F401
