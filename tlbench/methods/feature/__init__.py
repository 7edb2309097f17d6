"""Feature-based transfer: TCA, JDA, CORAL (shallow, issue 4) and the deep MMD methods (issue 5)."""

from . import coral, dan, jda, mmd, self_taught, source_only_deep, tca  # noqa: F401
