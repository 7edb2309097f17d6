"""Feature-based transfer: TCA, JDA and CORAL (shallow) and the deep MMD methods."""

from . import coral, jda, tca  # noqa: F401
