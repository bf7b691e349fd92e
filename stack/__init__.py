"""The local stack of real servers: Mosquitto, Kafka (KRaft), versitygw S3, and Spark's jars.

``stack.up()`` installs what is missing, starts what is not running and returns the `.env`
values; ``stack.down()`` stops the servers (data stays); ``stack.status()`` probes each one.
"""

from stack.core import Services, ServiceStatus, down, status, up
from stack.errors import StackError

__all__ = ["ServiceStatus", "Services", "StackError", "down", "status", "up"]
