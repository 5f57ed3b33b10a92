"""Testbenches of the GPU dirty tracker."""
