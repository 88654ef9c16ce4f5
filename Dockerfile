# tote: a static Go binary on distroless, running as nonroot (65532).

# ---- build ----------------------------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src

# Modules first, as their own layer: only go.mod/go.sum changes re-download.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tote ./cmd/tote \
 && mkdir -p /data-skel

# ---- run ------------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/tote /tote
# The default (file) session store keeps its log (tote.log) in DATA_DIR:
# an empty directory owned by nonroot, declared as a volume.
COPY --from=build --chown=65532:65532 /data-skel /data

ENV DATA_DIR=/data
VOLUME /data
EXPOSE 8080
USER 65532:65532

# No HEALTHCHECK: the image has no shell, curl or wget, and tote has no
# built-in probe mode (it ignores its arguments), so nothing in the image could
# run one. Probe GET /healthz (liveness) and GET /readyz (readiness) from
# outside: an orchestrator's HTTP probes, or a load balancer.
ENTRYPOINT ["/tote"]
