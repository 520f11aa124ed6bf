"""A whole MPP on one machine: `mpp demo` (broker, hub, simulated devices) and
`mpp simulate` (a busy day played through the real system)."""
