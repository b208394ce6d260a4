# fsrvpd in a container: static binaries on a small Debian base.
#   podman build --isolation chroot -t fsrvpd .
#   podman run --rm --network host fsrvpd            # the -demo default on loopback
#   podman run --rm --network host --privileged -v /etc/fsrvpd:/etc/fsrvpd:ro \
#       -v /var/lib/fsrvpd:/var/lib/fsrvpd -v /srv:/srv:rshared fsrvpd -config /etc/fsrvpd/fsrvpd.toml
# Offline: GO_IMAGE and BASE_IMAGE may name local images (.ci/package builds
# both from a debootstrap root and mounts the host's Go caches with -v).
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY client client
COPY cmd cmd
COPY conformance conformance
COPY rpc rpc
COPY server server
COPY shares shares
COPY storage storage
RUN go build -trimpath -o /out/fsrvpd ./cmd/fsrvpd && \
    go build -trimpath -o /out/fsrvp ./cmd/fsrvp

FROM ${BASE_IMAGE}
COPY --from=build /out/fsrvpd /out/fsrvp /usr/local/bin/
COPY cmd/fsrvpd/dist/fsrvpd.toml /etc/fsrvpd/fsrvpd.toml
VOLUME /var/lib/fsrvpd
EXPOSE 41345 135
ENTRYPOINT ["/usr/local/bin/fsrvpd"]
CMD ["-demo", "-state-dir", "/var/lib/fsrvpd", "-listen", "0.0.0.0:41345"]
