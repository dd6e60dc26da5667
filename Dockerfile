# ipfm station image: build with the FFmpeg 5.1 dev libraries, run on a slim Debian 12 with
# only the FFmpeg runtime libraries ipfm links (libavcodec, libavformat, libavutil,
# libswresample; not libavfilter, libavdevice or libswscale). The repository (key, store)
# lives in the /data volume: back it up, it holds the station's identity.
#   docker build -t ipfm .
#   docker run -v ipfm-data:/data -p 8080:8080 -p 4001:4001 -p 4001:4001/udp ipfm
#   docker run -v ipfm-data:/data -v /srv/music:/music:ro ... ipfm station --music /music --listen 0.0.0.0:8080

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libavcodec-dev libavformat-dev libavutil-dev libswresample-dev \
        pkg-config clang libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ipfm-node --bin ipfm

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libavcodec59 libavformat59 libavutil57 libswresample4 \
        ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /data ipfm
COPY --from=build /src/target/release/ipfm /usr/local/bin/ipfm
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER 10001
ENV IPFM_REPO=/data/repo
VOLUME ["/data"]
EXPOSE 8080 4001 4001/udp
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["station", "--listen", "0.0.0.0:8080"]
