"""Testbench infrastructure shared by every system."""
