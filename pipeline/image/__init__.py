"""Images: build with the Docker API, push, pin by digest, verify against the registry."""
