"""The uplink: the site's bridge to the region in a Mosquitto of its own, kept answering."""
