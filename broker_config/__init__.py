"""Mosquitto configuration templates for the site server (shipped as package data)."""
