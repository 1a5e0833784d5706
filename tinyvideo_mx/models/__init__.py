"""The networks: the original's layers and MXNet 1.9.1's workarounds (layers.py), the VGAN generator and
discriminator as the paper's layer table (networks.py), the image-to-video model (conditional_networks.py),
and building them from a configuration (factory.py)."""
