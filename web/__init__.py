"""The site web app in its own process (`mpp web`): a client of the hub like any device.

mpp web --site site.toml
"""
