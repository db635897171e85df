"""Imports every actor module so their actors register on the current broker."""

# One imported name per module: with `import shop.actors.x` lines ruff counts only the last
# binding of `shop` as unused, so the noqa would have to move with every new line.
from shop.actors import (
    auth,  # noqa: F401
    mail,  # noqa: F401
    orders,  # noqa: F401
    products,  # noqa: F401
    timers,  # noqa: F401
)
