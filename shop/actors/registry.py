"""Imports every actor module so their actors register on the current broker.

Context modules (auth, orders, products, mail) are added here as they land.
"""

import shop.actors.mail  # noqa: F401
import shop.actors.auth  # noqa: F401
