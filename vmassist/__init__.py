"""vmassist: virtualization-assist hardware blocks, their golden models and testbenches."""
