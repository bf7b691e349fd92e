"""The live map: a page that watches the fleet over MQTT on WebSockets, served locally."""
