"""Signage for the TVs in the lobby, canteen and entrance: pygame layouts that render the
hub's retained state, and spoken announcements in Indonesian."""
