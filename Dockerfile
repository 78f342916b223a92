# kratos-orgs: a static Go binary on a distroless base (no shell, no package
# manager, CA certificates and tzdata included, runs as nobody).
#
#   docker build -t ghcr.io/kratos-orgs/kratos-orgs:dev .
#
# tools/charttest's TestStaticBuild runs the same `go build` and checks that
# the result is statically linked, since no Docker engine runs in CI.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
# Dependencies first, so this layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kratos-orgs .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kratos-orgs /kratos-orgs
USER 65534:65534
# 4480: public listener (invitation pages). 4481: admin listener (operator
# API, Kratos webhooks, health): never expose it outside the cluster.
EXPOSE 4480 4481
ENTRYPOINT ["/kratos-orgs"]
CMD ["serve", "--config", "/etc/kratos-orgs/config.yaml"]
