"""Transfer methods; importing this package registers the built-in methods."""

from . import (
    baseline,  # noqa: F401
    feature,  # noqa: F401
    instance,  # noqa: F401
    parameter,  # noqa: F401
    relational,  # noqa: F401
)
