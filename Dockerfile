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

# Signalling + HTTP API. (SFU RTC and TURN ports arrive with those features.)
EXPOSE 7880/tcp
USER node
# SIGTERM drains (config drain.timeout_s); give the orchestrator's grace period more than that.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/cli.js", "serve"]
