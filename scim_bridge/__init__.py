"""scim-bridge: a SCIM 2.0 service provider in front of Genesys Cloud."""

__version__ = "0.1.0"
