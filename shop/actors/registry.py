"""Imports every actor module so their actors register on the current broker.

Context modules (auth, orders, products, mail) are added here as they land.
"""
