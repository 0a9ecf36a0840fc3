"""Adapters: the ports implemented with real technology (vendors, stores).

Vendor types stay in here.
"""
