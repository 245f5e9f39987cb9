"""Images: the registry (resolve, pin by digest, labels), its credentials and auth, cosign, and
the build engine (build steps, build, push). Takes no Context: the flows that do are in supply/."""
