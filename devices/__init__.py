"""CityFleet devices: a SimPy fleet of virtual sensors on real roads, publishing over MQTT.

Run ``python -m devices --help``; see ``devices/README.md`` for the design.
"""
