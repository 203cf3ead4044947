"""One small module per provider. Each turns provider errors into TransportError."""
