"""Shared fixtures: the real local stack (started once), throwaway servers, one SparkSession."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

pytest_plugins = ["tests.browser"]  # headless Chromium pages: chromium_context, browser_page

INTEGRATION_FIXTURES = frozenset(
    {"stack_env", "private_kafka", "private_mosquitto", "spark", "chromium_context"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test using a real server is an integration test, whether or not it says so."""
    for item in items:
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The shared stack's `.env` values; starts the stack unless it is already healthy."""
    import stack
    from cityconf.errors import UserError

    try:
        return stack.up(progress=False)
    except UserError as exc:
        pytest.fail(f"the local stack could not start: {exc}", pytrace=False)


@pytest.fixture
def private_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., object]]:
    """Factory: ``private_kafka()`` starts a throwaway Kafka (contract topics created).

    The object has ``bootstrap``, ``env``, ``start()``, ``stop()``, ``kill()``; all are
    killed and their folders removed when the test ends.
    """
    from stack.private import PrivateKafka

    made: list[PrivateKafka] = []

    def factory(**kwargs: object) -> PrivateKafka:
        broker = PrivateKafka(tmp_path_factory.mktemp("kafka"), **kwargs)
        made.append(broker)
        return broker.start()

    yield factory
    for broker in made:
        broker.kill()
        shutil.rmtree(broker.server.layout.root, ignore_errors=True)


@pytest.fixture
def private_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., object]]:
    """Factory: ``private_mosquitto(env=None)`` starts a throwaway Mosquitto.

    Same users, ACL and TLS scheme as the shared broker; pass ``env=stack_env`` to reuse the
    shared passwords, else new ones are generated (``password(user)``). The object has
    ``host``, ``port``, ``tls_port``, ``ca_file``, ``env`` (MQTT_* keys), ``start()``,
    ``stop()``, ``kill()``.
    """
    from stack.private import PrivateMosquitto

    made: list[PrivateMosquitto] = []

    def factory(env: dict[str, str] | None = None) -> PrivateMosquitto:
        broker = PrivateMosquitto(tmp_path_factory.mktemp("mosquitto"), env)
        made.append(broker)
        return broker.start()

    yield factory
    for broker in made:
        broker.kill()
        shutil.rmtree(broker.server.layout.root, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(stack_env: dict[str, str]):
    """One local SparkSession for the whole test session (Spark takes ~10 s to start)."""
    from spark.session import build_session

    session = build_session("cityfleet-tests", stack_env, extra_conf={"spark.ui.enabled": "false"})
    yield session
    session.stop()
