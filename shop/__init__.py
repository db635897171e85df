"""shop: an event-driven e-commerce backend (auth, catalog, orders, mail) on real message buses."""

__version__ = "0.1.0"
