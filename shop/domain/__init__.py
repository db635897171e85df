"""Pure rules of the shop, with no I/O: each context in its own module."""
