# Written by `ship init` for a Go module. ship.yaml's `build:` compiles the binary first (static,
# no cgo), so the image needs no base to pull: FROM scratch holds the binary alone.
FROM scratch
COPY bin/__APP__ /__APP__
EXPOSE __PORT__
USER 65534:65534
ENTRYPOINT ["/__APP__"]
