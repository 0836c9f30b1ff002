"""The cluster over RabbitMQ: the runtime's transport, and the wallet's events across nodes.

``RabbitTransport`` is a runtime ``Transport`` (remote refs, sharded entities, forwarded
events) and knows nothing of wallets; ``Codec`` is its wire format.
"""

from transakt.rabbitmq.codec import VERSION, Codec, CodecError
from transakt.rabbitmq.refs import RemoteActorRef, RemoteEntityRef
from transakt.rabbitmq.transport import RabbitTransport, TransportStats, shard_of

__all__ = [
    "VERSION",
    "Codec",
    "CodecError",
    "RabbitTransport",
    "RemoteActorRef",
    "RemoteEntityRef",
    "TransportStats",
    "shard_of",
]
