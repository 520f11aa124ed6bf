"""The technician's tool: from one site inventory to broker credentials, ACL, device bundles,
first-boot files and a live view of the fleet."""
