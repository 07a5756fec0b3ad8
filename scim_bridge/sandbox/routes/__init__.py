"""The sandbox's HTTP endpoints, one blueprint per Genesys API area plus ``/sandbox`` control."""
