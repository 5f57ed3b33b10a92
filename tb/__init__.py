"""cocotb testbenches: drivers, monitors, scoreboards, memory models, per system."""
