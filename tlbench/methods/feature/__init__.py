"""Feature-based transfer: TCA, JDA, CORAL, the deep MMD methods and the adversarial ones."""

from . import (  # noqa: F401
    adda,
    cdan,
    coral,
    dan,
    dann,
    domain_confusion,
    jda,
    mcc,
    mmd,
    self_taught,
    source_only_deep,
    tca,
)
