import socket


def free_port() -> int:
    """A loopback TCP port nothing listens on (free when asked; bind it soon)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
