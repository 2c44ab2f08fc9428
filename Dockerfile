# AuraLink RTC server. Builds the same way as a developer machine: scripts/setup.sh installs
# the Debian build libraries, meson (bookworm-backports), npm dependencies and the mediasoup
# worker, then compiles the TypeScript. (Not buildable on the dev sandbox: no Docker engine.)
FROM node:20-bookworm

WORKDIR /app
ENV AURALINK_CACHE_DIR=/opt/auralink-cache
COPY . .
RUN bash scripts/setup.sh \
 && npm prune --omit=dev \
 && rm -rf /opt/auralink-cache/meson /root/.npm

# Signalling + HTTP API; SFU WebRtcServer (one UDP+TCP port per worker from sfu.webrtc_port);
# embedded TURN (turn.port) and its relay range (turn.relay_min_port..relay_max_port).
EXPOSE 7880/tcp 44400-44415/udp 44400-44415/tcp 3478/udp 49160-49400/udp
USER node
# SIGTERM drains (config drain.timeout_s); give the orchestrator's grace period more than that.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/cli.js", "serve"]
