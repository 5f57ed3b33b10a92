"""MMU testbench: AXI RAM with random latency, request driver, response monitor, VMM port."""
