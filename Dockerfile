# fsrvpd in a container: a static binary on a small Debian base.
#   podman build --isolation chroot -t fsrvpd .
#   podman run --rm --network host fsrvpd            # the -demo default on loopback
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/fsrvpd ./cmd/fsrvpd && \
    CGO_ENABLED=0 go build -trimpath -o /out/fsrvp ./cmd/fsrvp

FROM debian:bookworm-slim
COPY --from=build /out/fsrvpd /out/fsrvp /usr/local/bin/
VOLUME /var/lib/fsrvpd
EXPOSE 41345 135
ENTRYPOINT ["/usr/local/bin/fsrvpd"]
CMD ["-demo", "-state-dir", "/var/lib/fsrvpd"]
