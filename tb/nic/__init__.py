"""cocotb testbench of the NIC filter."""
