"""The hub: the site's single authority on ticket numbers and calls (queue on SQLite, MQTT
service, web app). Edge devices only send intents and render what the hub publishes."""
