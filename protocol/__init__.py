"""What every part of the MPP system shares: the site inventory, topics, messages, MQTT bus.

Kiosks, caller boxes, displays, the hub and the provisioning tool all import their contracts
from here, so a topic string or a message field is spelled in exactly one place.
"""

__version__ = "0.1.0"
