"""The Dramatiq broker, from a URL: ``redis://``, ``rediss://``, ``unix://`` (Redis on a
socket, as the embedded one is) or ``amqp://`` / ``amqps://`` (RabbitMQ)."""

from __future__ import annotations

from dramatiq import Broker
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from scheduler.errors import ConfigurationError

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://")


def make_broker(url: str, *, namespace: str) -> Broker:
    if url.startswith(REDIS_SCHEMES):
        return RedisBroker(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
    if url.startswith(AMQP_SCHEMES):
        return RabbitmqBroker(url=url, confirm_delivery=True)
    raise ConfigurationError(
        f"BROKER_URL must start with redis://, rediss://, unix:// or amqp://; got {url.split('://', maxsplit=1)[0]}://..."
    )


def ping(broker: Broker) -> None:
    """Raise if the broker cannot be reached (readiness)."""
    if isinstance(broker, RedisBroker):
        broker.client.ping()
    elif isinstance(broker, RabbitmqBroker):
        broker.channel  # noqa: B018 - opening the channel is the check
    else:  # the StubBroker of unit tests is always there
        return
