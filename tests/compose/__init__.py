"""The deployment's compose files run for real, on local stand-ins for the upstream images."""
