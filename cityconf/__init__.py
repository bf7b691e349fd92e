"""CityFleet configuration: the one package every component reads its settings through.

The name says what it is, *CityFleet configuration*, and keeps it apart from ``stack/``, which
runs the servers: devices, the bridge, the Spark jobs and the live map import ``cityconf`` to
learn where things are, without pulling in server code. It imports nothing of ours but
``contract/`` and nothing outside the standard library, so ``spark/`` ships as a zip of
``contract/``, ``cityconf/`` and ``spark/`` alone.

- ``cityconf.env``: reading ``.env`` and the environment, the environment winning.
- ``cityconf.keys``: every configuration key, its default and who reads it (the README's
  configuration table is generated from it: ``python -m cityconf.docs``).
- ``cityconf.errors``: ``UserError``, the one error a command prints as one line.
- ``cityconf.layout``: the state folder's layout.
- ``cityconf.mqtt``: the broker's endpoint, logins and limits.
"""
