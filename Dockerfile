# syntax=docker/dockerfile:1
# Konstruct: one binary (`konstruct serve | worker | dev | migrate | admin`).
#   docker build -t konstruct .
# docker-compose.yml builds it for the migrate, api and worker services.

# ---- build ------------------------------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/konstruct ./cmd/konstruct

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 konstruct \
 && useradd --system --uid 10001 --gid konstruct --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin konstruct
COPY --from=build /out/konstruct /usr/local/bin/konstruct
USER 10001:10001
ENV KONSTRUCT_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/konstruct"]
CMD ["serve"]
