"""The one exception the export decoders raise: a datagram that is not a well-formed message."""


class DecodeError(ValueError):
    """A NetFlow v5/v9 or IPFIX datagram is malformed; the message says what and where.

    Decoders raise nothing else on bad input, so a collector loop catches this
    one type, counts the datagram as bad and goes on.
    """
