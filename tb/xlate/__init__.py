"""Translation-layer benchmark and demo (no HDL: the guest runs on the host)."""
