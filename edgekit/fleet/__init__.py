"""Fleets: many devices' stores judged together (inventory, status over SSH, incidents).

Light on purpose: importing this package imports nothing heavy; each submodule is imported when used.

Example:
    >>> from edgekit.fleet.inventory import load_inventory
    >>> inv = load_inventory("fleet.toml")                       # doctest: +SKIP
    >>> [d.name for d in inv.ring("canary")]                     # doctest: +SKIP
    ['pi-lab-1']
"""
