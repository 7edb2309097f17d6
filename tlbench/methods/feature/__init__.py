"""Feature-based transfer: TCA, JDA, CORAL, the deep MMD methods and the adversarial ones."""

from . import (  # noqa: F401
    adda,
    coral,
    dan,
    dann,
    domain_confusion,
    jda,
    mmd,
    self_taught,
    source_only_deep,
    tca,
)
